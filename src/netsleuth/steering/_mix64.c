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

static inline uint64_t mix_step(uint64_t h, uint64_t w) {
    uint64_t x = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    return x ^ (x >> 32);
}

static inline uint64_t mix_final(uint64_t x) {
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    return x ^ (x >> 33);
}

/* The flow fields (fields.py Fields, in its order) and the extra columns of one call. */
enum { F_VER, F_SRC_HI, F_SRC_LO, F_DST_HI, F_DST_LO, F_PROTO, F_SPORT, F_DPORT, F_HAS_PORTS,
       F_FLOW_LABEL, NFIELDS };
static const Py_ssize_t F_ITEM[NFIELDS] = {1, 8, 8, 8, 8, 1, 2, 2, 1, 4};

typedef struct {
    Py_buffer v[NFIELDS + 2];
    int held;
    Py_ssize_t n;
    const uint8_t *ver, *proto, *has_ports;
    const uint64_t *shi, *slo, *dhi, *dlo;
    const uint16_t *sport, *dport;
    const uint32_t *label;
} FieldCols;

static void release(FieldCols *f) {
    for (int k = 0; k < f->held; k++) PyBuffer_Release(&f->v[k]);
}

/* The Fields tuple, then `extra` uint64 columns (the last writable: the output). */
static int field_cols(FieldCols *f, PyObject *seq, PyObject **extra, int nextra) {
    f->held = 0;
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) != NFIELDS) {
        PyErr_SetString(PyExc_ValueError, "fields: a tuple of the 10 Fields columns");
        return -1;
    }
    f->n = -1;
    for (int k = 0; k < NFIELDS + nextra; k++) {
        int out = k == NFIELDS + nextra - 1;
        PyObject *o = k < NFIELDS ? PyTuple_GET_ITEM(seq, k) : extra[k - NFIELDS];
        if (PyObject_GetBuffer(o, &f->v[k], PyBUF_C_CONTIGUOUS | (out ? PyBUF_WRITABLE : 0)) <
            0) {
            release(f);
            return -1;
        }
        f->held++;
        Py_ssize_t item = k < NFIELDS ? F_ITEM[k] : 8;
        if (f->n < 0) f->n = f->v[k].len / item;
        if (f->v[k].len != f->n * item) {
            release(f);
            PyErr_SetString(PyExc_ValueError, "column sizes do not match");
            return -1;
        }
    }
    f->ver = f->v[F_VER].buf;
    f->proto = f->v[F_PROTO].buf;
    f->has_ports = f->v[F_HAS_PORTS].buf;
    f->shi = f->v[F_SRC_HI].buf;
    f->slo = f->v[F_SRC_LO].buf;
    f->dhi = f->v[F_DST_HI].buf;
    f->dlo = f->v[F_DST_LO].buf;
    f->sport = f->v[F_SPORT].buf;
    f->dport = f->v[F_DPORT].buf;
    f->label = f->v[F_FLOW_LABEL].buf;
    return 0;
}

/* dissector_hash(fields, keyid, seed, out): mix64 of model.dissector_words, row by row
 * (the same six words, so the same hash; tests/test_steer.py holds the two equal). */
static PyObject *dissector_hash(PyObject *self, PyObject *args) {
    PyObject *seq, *extra[2];
    unsigned long long seed;
    FieldCols f;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOKO", &seq, &extra[0], &seed, &extra[1])) return NULL;
    if (field_cols(&f, seq, extra, 2) < 0) return NULL;
    const uint64_t *keyid = f.v[NFIELDS].buf, h0 = (uint64_t)seed * 0x9E3779B97F4A7C15ULL;
    uint64_t *out = f.v[NFIELDS + 1].buf;
    for (Py_ssize_t i = 0; i < f.n; i++) {
        uint64_t label = f.ver[i] == 6 ? f.label[i] : 0;
        int ports = f.has_ports[i] && label == 0; /* a flow label stops before the ports */
        uint64_t sp = ports ? f.sport[i] : 0, dp = ports ? f.dport[i] : 0;
        uint64_t shi = f.shi[i], slo = f.slo[i], dhi = f.dhi[i], dlo = f.dlo[i];
        /* __flow_hash_consistentify: the lower endpoint first, equal addresses by port. */
        int swap = dhi < shi || (dhi == shi && (dlo < slo || (dlo == slo && dp < sp)));
        uint64_t h = h0;
        h = mix_step(h, swap ? dhi : shi);
        h = mix_step(h, swap ? dlo : slo);
        h = mix_step(h, swap ? shi : dhi);
        h = mix_step(h, swap ? slo : dlo);
        h = mix_step(h, ((swap ? dp : sp) << 48) | ((swap ? sp : dp) << 32) | f.proto[i]);
        h = mix_step(h, (keyid[i] << 32) | label);
        out[i] = mix_final(h);
    }
    release(&f);
    Py_RETURN_NONE;
}

/* flow_hash(fields, seed, out): mix64 of addresses (hi, lo, hi, lo) and ports with the
 * protocol (ports zero where the packet has none): run.Traffic's flow id. */
static PyObject *flow_hash(PyObject *self, PyObject *args) {
    PyObject *seq, *extra[1];
    unsigned long long seed;
    FieldCols f;
    (void)self;
    if (!PyArg_ParseTuple(args, "OKO", &seq, &seed, &extra[0])) return NULL;
    if (field_cols(&f, seq, extra, 1) < 0) return NULL;
    const uint64_t h0 = (uint64_t)seed * 0x9E3779B97F4A7C15ULL;
    uint64_t *out = f.v[NFIELDS].buf;
    for (Py_ssize_t i = 0; i < f.n; i++) {
        uint64_t sp = f.has_ports[i] ? f.sport[i] : 0, dp = f.has_ports[i] ? f.dport[i] : 0;
        uint64_t h = h0;
        h = mix_step(h, f.shi[i]);
        h = mix_step(h, f.slo[i]);
        h = mix_step(h, f.dhi[i]);
        h = mix_step(h, f.dlo[i]);
        h = mix_step(h, (sp << 48) | (dp << 32) | f.proto[i]);
        out[i] = mix_final(h);
    }
    release(&f);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"mix64", mix64, METH_VARARGS, "Seeded 64-bit hash of each row of word columns."},
    {"dissector_hash", dissector_hash, METH_VARARGS, "mix64 of each packet's dissector key."},
    {"flow_hash", flow_hash, METH_VARARGS, "mix64 of each packet's flow fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_mix64", "The seeded row hash of steer's models.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mix64(void) { return PyModule_Create(&moddef); }
