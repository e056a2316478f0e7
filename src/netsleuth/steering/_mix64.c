/*
 * mix64: the seeded 64-bit hash steer uses for flow ids and in place of the kernel's jhash
 * (whose per-boot secret no capture can know; see model.py). Each row of an (n, k) byte
 * array is read as little-endian 64-bit words, zero-padded to a multiple of 8 bytes;
 * h = seed * 0x9E3779B97F4A7C15; for each word: h ^= w; h *= 0xFF51AFD7ED558CCD;
 * h ^= h >> 32; then murmur3's fmix64 finalizer (h ^= h >> 33; h *= 0xC4CEB9FE1A85EC53;
 * h ^= h >> 33). tests/test_steer.py checks it against a plain-integer Python version.
 *
 * Why in C: in NumPy each of those steps is a pass over the batch (about 30 for a 45-byte
 * dissector key, plus a padded copy), ~25 ns a packet per hash; steer hashes every packet
 * twice (RPS key, flow id) inside a budget of ~650 ns a packet end to end. Here: ~3 ns.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "words are read with memcpy as little-endian: add a byte swap for this host"
#endif

/* mix64(rows, width, seed, out): rows is n*width bytes, out n uint64. */
static PyObject *mix64(PyObject *self, PyObject *args) {
    PyObject *rowsobj, *outobj;
    Py_ssize_t width;
    unsigned long long seed;
    Py_buffer in, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnKO", &rowsobj, &width, &seed, &outobj)) return NULL;
    if (PyObject_GetBuffer(rowsobj, &in, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(outobj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_ssize_t n = out.len / 8;
    if (width <= 0 || out.len % 8 != 0 || in.len != n * width) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "rows must be n x width bytes, out n uint64");
        return NULL;
    }
    const unsigned char *r = (const unsigned char *)in.buf;
    uint64_t *o = (uint64_t *)out.buf;
    const uint64_t h0 = (uint64_t)seed * 0x9E3779B97F4A7C15ULL;
    /* Rows in blocks of BLOCK: each row's multiply chain is serial (~40 cycles for a 45-byte
     * row), so the block's independent chains are interleaved for the CPU to overlap. */
    enum { BLOCK = 8 };
    for (Py_ssize_t i0 = 0; i0 < n; i0 += BLOCK) {
        Py_ssize_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
        uint64_t h[BLOCK];
        for (Py_ssize_t j = 0; j < m; j++) h[j] = h0;
        for (Py_ssize_t k = 0; k < width; k += 8) {
            Py_ssize_t take = width - k < 8 ? width - k : 8;
            for (Py_ssize_t j = 0; j < m; j++) {
                uint64_t w = 0;
                const unsigned char *src = r + (i0 + j) * width + k;
                if (take == 8)
                    memcpy(&w, src, 8); /* a fixed size: one load (little-endian host) */
                else
                    for (Py_ssize_t b = 0; b < take; b++) w |= (uint64_t)src[b] << (8 * b);
                h[j] ^= w;
                h[j] *= 0xFF51AFD7ED558CCDULL;
                h[j] ^= h[j] >> 32;
            }
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            uint64_t x = h[j];
            x ^= x >> 33;
            x *= 0xC4CEB9FE1A85EC53ULL;
            x ^= x >> 33;
            o[i0 + j] = x;
        }
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"mix64", mix64, METH_VARARGS, "Seeded 64-bit hash of each byte row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_mix64", "The seeded row hash of steer's models.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mix64(void) { return PyModule_Create(&moddef); }
