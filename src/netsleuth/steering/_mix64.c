/*
 * mix64: the seeded 64-bit hash steer uses for flow ids and in place of the kernel's jhash
 * (whose per-boot secret no capture can know; see model.py). A row is k 64-bit words, given
 * column by column (one uint64 array per word, so callers build no byte rows);
 * h = seed * 0x9E3779B97F4A7C15; for each word: h ^= w; h *= 0xFF51AFD7ED558CCD;
 * h ^= h >> 32; then murmur3's fmix64 finalizer (h ^= h >> 33; h *= 0xC4CEB9FE1A85EC53;
 * h ^= h >> 33). tests/test_steer.py checks it against a plain-integer Python version.
 *
 * Why in C: in NumPy each of those steps is a pass over the batch (about 30 for the six words
 * of a dissector key), ~25 ns a packet per hash; steer hashes every packet twice (RPS key,
 * flow id) inside a budget of ~650 ns a packet end to end. Here: a few ns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { MAX_WORDS = 16 };

/* mix64(columns, seed, out): columns is a tuple of k arrays of n uint64 (the words of each
 * row, in order), out n uint64. */
static PyObject *mix64(PyObject *self, PyObject *args) {
    PyObject *seq, *outobj;
    unsigned long long seed;
    Py_buffer out, cols[MAX_WORDS];
    (void)self;
    if (!PyArg_ParseTuple(args, "OKO", &seq, &seed, &outobj)) return NULL;
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) < 1 || PyTuple_GET_SIZE(seq) > MAX_WORDS) {
        PyErr_SetString(PyExc_ValueError, "columns: a tuple of 1 to 16 uint64 arrays");
        return NULL;
    }
    Py_ssize_t k = PyTuple_GET_SIZE(seq);
    if (PyObject_GetBuffer(outobj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    Py_ssize_t n = out.len / 8, got = 0;
    int ok = out.len % 8 == 0;
    for (; ok && got < k; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(seq, got), &cols[got], PyBUF_C_CONTIGUOUS) < 0) {
            ok = -1;
            break;
        }
        if (cols[got].len != n * 8) {
            got++;
            ok = 0;
        }
    }
    if (ok != 1) {
        for (Py_ssize_t j = 0; j < got; j++) PyBuffer_Release(&cols[j]);
        PyBuffer_Release(&out);
        if (ok == 0) PyErr_SetString(PyExc_ValueError, "every column must hold n uint64");
        return NULL;
    }
    const uint64_t *w[MAX_WORDS];
    for (Py_ssize_t j = 0; j < k; j++) w[j] = (const uint64_t *)cols[j].buf;
    uint64_t *o = (uint64_t *)out.buf;
    const uint64_t h0 = (uint64_t)seed * 0x9E3779B97F4A7C15ULL;
    /* Column by column over a block of rows: each row's multiply chain is serial, so the
     * block's independent chains are interleaved for the CPU to overlap. */
    enum { BLOCK = 64 };
    for (Py_ssize_t i0 = 0; i0 < n; i0 += BLOCK) {
        Py_ssize_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
        uint64_t h[BLOCK];
        for (Py_ssize_t i = 0; i < m; i++) h[i] = h0;
        for (Py_ssize_t j = 0; j < k; j++) {
            const uint64_t *c = w[j] + i0;
            for (Py_ssize_t i = 0; i < m; i++) {
                uint64_t x = (h[i] ^ c[i]) * 0xFF51AFD7ED558CCDULL;
                h[i] = x ^ (x >> 32);
            }
        }
        for (Py_ssize_t i = 0; i < m; i++) {
            uint64_t x = h[i];
            x ^= x >> 33;
            x *= 0xC4CEB9FE1A85EC53ULL;
            x ^= x >> 33;
            o[i0 + i] = x;
        }
    }
    for (Py_ssize_t j = 0; j < k; j++) PyBuffer_Release(&cols[j]);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"mix64", mix64, METH_VARARGS, "Seeded 64-bit hash of each row of word columns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_mix64", "The seeded row hash of steer's models.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mix64(void) { return PyModule_Create(&moddef); }
