/*
 * toeplitz_fields: the RSS Toeplitz hash of each packet's flow fields (steering/fields.py
 * Fields), with the per-byte tables of toeplitz.py (tables[i][b] is byte position i's
 * contribution when it holds value b; the hash is linear, so the XOR of the contributions
 * is the hash, and a zero byte contributes nothing).
 *
 * Input per packet, in network byte order (Microsoft, "RSS hashing functions"): IPv4 source
 * and destination address (8 bytes), IPv6 (32 bytes), then source and destination port
 * where the packet is hashed with ports (l4); packets without an IP layer hash to 0.
 *
 * Why in C: in NumPy the input bytes are first laid out as byte columns (byte-swapping
 * copies of every address half and port), then one gather and XOR pass per byte: 12
 * passes for IPv4, 36 for IPv6, ~60 ns a packet for the model's whole hash, against a
 * budget of ~650 ns for all of steer. Here one pass, the tables in L1.
 * Toeplitz.hash_columns stays the reference; tests/test_steer.py holds the two equal.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { C_VER, C_SRC_HI, C_SRC_LO, C_DST_HI, C_DST_LO, C_SPORT, C_DPORT, C_L4, NCOL };
static const Py_ssize_t ITEM[NCOL] = {1, 8, 8, 8, 8, 2, 2, 1};

/* XOR of the contributions of the `width` bytes of v (big-endian) at positions at.. */
static inline uint32_t part(const uint32_t *t, int at, uint64_t v, int width) {
    uint32_t h = 0;
    for (int k = 0; k < width; k++) h ^= t[(at + k) * 256 + ((v >> (8 * (width - 1 - k))) & 0xFF)];
    return h;
}

/* toeplitz_fields(tables, columns, out): tables (m, 256) uint32; columns: ver, src_hi,
 * src_lo, dst_hi, dst_lo, sport, dport, l4 (n each); out n uint32. */
static PyObject *toeplitz_fields(PyObject *self, PyObject *args) {
    PyObject *tobj, *seq, *oobj;
    Py_buffer tb, ob, v[NCOL];
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO", &tobj, &seq, &oobj)) return NULL;
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) != NCOL) {
        PyErr_SetString(PyExc_ValueError, "columns: ver, src_hi, src_lo, dst_hi, dst_lo, "
                                          "sport, dport, l4");
        return NULL;
    }
    if (PyObject_GetBuffer(tobj, &tb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(oobj, &ob, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&tb);
        return NULL;
    }
    Py_ssize_t n = ob.len / 4;
    int got = 0, ok = ob.len == n * 4 && tb.len % (256 * 4) == 0;
    for (; ok == 1 && got < NCOL; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(seq, got), &v[got], PyBUF_C_CONTIGUOUS) < 0) {
            ok = -1;
            break;
        }
        if (v[got].len != n * ITEM[got]) {
            got++;
            ok = 0;
        }
    }
    int m = (int)(tb.len / (256 * 4));
    const uint8_t *ver = ok == 1 ? v[C_VER].buf : NULL;
    /* Every packet's input must fit the key: the same rule as Toeplitz.hash_columns. */
    for (Py_ssize_t i = 0; ok == 1 && i < n; i++)
        if ((ver[i] == 4 && m < 12) || (ver[i] == 6 && m < 36)) ok = -2;
    if (ok != 1) {
        for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
        PyBuffer_Release(&tb);
        PyBuffer_Release(&ob);
        if (ok == 0) PyErr_SetString(PyExc_ValueError, "column sizes do not match");
        if (ok == -2) PyErr_SetString(PyExc_ValueError, "the key is too short for the input");
        return NULL;
    }
    const uint32_t *t = tb.buf;
    const uint64_t *shi = v[C_SRC_HI].buf, *slo = v[C_SRC_LO].buf;
    const uint64_t *dhi = v[C_DST_HI].buf, *dlo = v[C_DST_LO].buf;
    const uint16_t *sp = v[C_SPORT].buf, *dp = v[C_DPORT].buf;
    const uint8_t *l4 = v[C_L4].buf;
    uint32_t *out = ob.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t h = 0;
        int at;
        if (ver[i] == 4) {
            h = part(t, 0, slo[i], 4) ^ part(t, 4, dlo[i], 4);
            at = 8;
        } else if (ver[i] == 6) {
            h = part(t, 0, shi[i], 8) ^ part(t, 8, slo[i], 8) ^ part(t, 16, dhi[i], 8) ^
                part(t, 24, dlo[i], 8);
            at = 32;
        } else {
            out[i] = 0;
            continue;
        }
        if (l4[i]) h ^= part(t, at, sp[i], 2) ^ part(t, at + 2, dp[i], 2);
        out[i] = h;
    }
    for (int k = 0; k < NCOL; k++) PyBuffer_Release(&v[k]);
    PyBuffer_Release(&tb);
    PyBuffer_Release(&ob);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"toeplitz_fields", toeplitz_fields, METH_VARARGS, "RSS Toeplitz hash of flow fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_toeplitz", "The RSS Toeplitz hash of flow fields.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__toeplitz(void) { return PyModule_Create(&moddef); }
