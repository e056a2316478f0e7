/*
 * tally: packets and bytes per distinct 64-bit key (a flow id, an RSS or RPS hash), in an
 * open-addressing hash table whose arrays the caller owns (steering/tally.py grows them).
 *
 * Why in C: steer counts every packet into the flow table and into two distinct-key sets per
 * model. In NumPy that is a sort per batch and merges of sorted runs (~250 ns a packet on the
 * benchmark mix, against a budget of ~650 ns for all of steer); a hash table probe is a few
 * ns, and memory stays bounded by the distinct keys, not the packets.
 *
 * Layout: `slots` holds 2^b record indices (-1 empty), at least twice the record capacity,
 * so the load stays at or below one half; linear probing from the key's Fibonacci hash
 * (the top b bits of key * 2^64/phi: keys that are themselves hashes, or small integers,
 * spread alike). Records are appended in first-seen order: rec_key, rec_packets, rec_bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    Py_buffer keys, sizes, slots, rec_key, rec_packets, rec_bytes, new_rows;
} Bufs;

static int get(PyObject *o, Py_buffer *b, int writable) {
    return PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0));
}

static unsigned slot_bits(Py_ssize_t nslots) {
    unsigned bits = 0;
    while (((Py_ssize_t)1 << bits) < nslots) bits++;
    return bits;
}

static inline uint64_t slot_of(uint64_t key, unsigned bits) {
    return (key * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
}

/* tally(keys, sizes, slots, rec_key, rec_packets, rec_bytes, count, new_rows) -> new keys.
 * keys: n uint64; sizes: n int64 (bytes per packet); new_rows: n int64, receives the rows
 * whose key was new, in order. Requires count + n <= record capacity and a power-of-two
 * slot count of at least twice the record capacity. */
static PyObject *tally(PyObject *self, PyObject *args) {
    PyObject *o[7];
    Py_ssize_t count;
    Bufs b;
    Py_buffer *all[7] = {&b.keys, &b.sizes, &b.slots, &b.rec_key, &b.rec_packets, &b.rec_bytes,
                         &b.new_rows};
    const int writable[7] = {0, 0, 1, 1, 1, 1, 1};
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOnO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &count,
                          &o[6]))
        return NULL;
    int got = 0;
    for (; got < 7; got++)
        if (get(o[got], all[got], writable[got]) < 0) break;
    if (got < 7) {
        for (int k = 0; k < got; k++) PyBuffer_Release(all[k]);
        return NULL;
    }
    Py_ssize_t n = b.keys.len / 8, cap = b.rec_key.len / 8, nslots = b.slots.len / 8;
    unsigned bits = slot_bits(nslots);
    const char *err = NULL;
    if (b.sizes.len != n * 8 || b.new_rows.len != n * 8 || b.rec_packets.len != cap * 8 ||
        b.rec_bytes.len != cap * 8)
        err = "array sizes do not match";
    else if (count < 0 || count + n > cap)
        err = "record capacity too small for this batch";
    else if (((Py_ssize_t)1 << bits) != nslots || nslots < 2 * cap || bits == 0)
        err = "slots: a power of two, at least twice the record capacity";
    Py_ssize_t fresh = 0;
    if (err == NULL) {
        const uint64_t *keys = b.keys.buf;
        const int64_t *sizes = b.sizes.buf;
        int64_t *slots = b.slots.buf, *pk = b.rec_packets.buf, *by = b.rec_bytes.buf;
        int64_t *out = b.new_rows.buf;
        uint64_t *rk = b.rec_key.buf;
        const uint64_t mask = (uint64_t)nslots - 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t key = keys[i], s = slot_of(key, bits);
            int64_t r;
            while ((r = slots[s]) >= 0 && rk[r] != key) s = (s + 1) & mask;
            if (r < 0) {
                r = count++;
                slots[s] = r;
                rk[r] = key;
                pk[r] = 0;
                by[r] = 0;
                out[fresh++] = i;
            }
            pk[r] += 1;
            by[r] += sizes[i];
        }
    }
    for (int k = 0; k < 7; k++) PyBuffer_Release(all[k]);
    if (err != NULL) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    return PyLong_FromSsize_t(fresh);
}

/* reslot(rec_key, count, slots): index records 0..count-1 into empty (all -1) slots. */
static PyObject *reslot(PyObject *self, PyObject *args) {
    PyObject *ko, *so;
    Py_ssize_t count;
    Py_buffer kb, sb;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnO", &ko, &count, &so)) return NULL;
    if (get(ko, &kb, 0) < 0) return NULL;
    if (get(so, &sb, 1) < 0) {
        PyBuffer_Release(&kb);
        return NULL;
    }
    Py_ssize_t nslots = sb.len / 8;
    unsigned bits = slot_bits(nslots);
    int ok = count >= 0 && count * 8 <= kb.len && ((Py_ssize_t)1 << bits) == nslots &&
             bits > 0 && 2 * count <= nslots;
    if (ok) {
        const uint64_t *rk = kb.buf, mask = (uint64_t)nslots - 1;
        int64_t *slots = sb.buf;
        for (Py_ssize_t r = 0; r < count; r++) {
            uint64_t s = slot_of(rk[r], bits);
            while (slots[s] >= 0) s = (s + 1) & mask;
            slots[s] = r;
        }
    }
    PyBuffer_Release(&kb);
    PyBuffer_Release(&sb);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "reslot: slots too few or count out of range");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"tally", tally, METH_VARARGS, "Count packets and bytes per distinct 64-bit key."},
    {"reslot", reslot, METH_VARARGS, "Index the records into a fresh slot array."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_tally", "Packets and bytes per distinct key, hashed.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tally(void) { return PyModule_Create(&moddef); }
