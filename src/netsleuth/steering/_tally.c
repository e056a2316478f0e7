/*
 * tally: packets and bytes per distinct 64-bit key (a flow id, an RSS or RPS hash), in an
 * open-addressing hash table whose arrays the caller owns (steering/tally.py grows them).
 *
 * Why in C: steer counts every packet into the flow table and into two distinct-key sets per
 * model. In NumPy that is a sort per batch and merges of sorted runs (~250 ns a packet on the
 * benchmark mix, against a budget of ~650 ns for all of steer); a hash table probe is a few
 * ns, and memory stays bounded by the distinct keys, not the packets.
 *
 * Layout: 2^b slots of (key, record number + 1), 0 marking an empty slot (so every key value
 * is allowed), at least twice as many slots as keys, so the load stays at or below one half;
 * linear probing from the key's Fibonacci hash (the top b bits of key * 2^64/phi: keys that
 * are themselves hashes, or small integers, spread alike). The key sits in its slot, so a
 * probe reads one cache line. Records are numbered in first-seen order; their packets and
 * bytes are counted in the caller's arrays, or not at all for a distinct count.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

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

/* tally(keys, sizes, slots, count, rec_packets, rec_bytes, new_rows) -> new keys.
 * keys: n uint64. slots: 2 * 2^b uint64, pairs (key, record + 1), record + 1 == 0 empty.
 * count: records so far (the table must hold count + n at a load of at most one half).
 * sizes: n int64 bytes per packet, with rec_packets and rec_bytes (record capacity int64
 * each) to count into; or all three None to count distinct keys only. new_rows: n int64,
 * receives the rows whose key was new, in order. */
static PyObject *tally(PyObject *self, PyObject *args) {
    PyObject *o[6];
    Py_ssize_t count;
    Py_buffer keys, sizes, slots, pk, by, rows;
    Py_buffer *all[6] = {&keys, &sizes, &slots, &pk, &by, &rows};
    const int writable[6] = {0, 0, 1, 1, 1, 1};
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOnOOO", &o[0], &o[1], &o[2], &count, &o[3], &o[4], &o[5]))
        return NULL;
    int counted = o[1] != Py_None;
    if (counted != (o[3] != Py_None) || counted != (o[4] != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "sizes, rec_packets and rec_bytes: all or none");
        return NULL;
    }
    int got = 0;
    for (; got < 6; got++) {
        if (o[got] == Py_None) continue;
        if (get(o[got], all[got], writable[got]) < 0) break;
    }
    if (got < 6) {
        for (int k = 0; k < got; k++)
            if (o[k] != Py_None) PyBuffer_Release(all[k]);
        return NULL;
    }
    Py_ssize_t n = keys.len / 8, nslots = slots.len / 16;
    unsigned bits = slot_bits(nslots);
    const char *err = NULL;
    if (rows.len != n * 8 || slots.len != nslots * 16 ||
        (counted && (sizes.len != n * 8 || pk.len != by.len || pk.len < (count + n) * 8)))
        err = "array sizes do not match";
    else if (((Py_ssize_t)1 << bits) != nslots || bits == 0 || count < 0 ||
             2 * (count + n) > nslots)
        err = "slots: a power of two, at least twice the keys after this batch";
    Py_ssize_t fresh = 0;
    if (err == NULL) {
        const uint64_t *k = keys.buf, mask = (uint64_t)nslots - 1;
        const int64_t *sz = counted ? sizes.buf : NULL;
        uint64_t *sl = slots.buf;
        int64_t *p = counted ? pk.buf : NULL, *b = counted ? by.buf : NULL, *out = rows.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t key = k[i], s = slot_of(key, bits), r;
            while ((r = sl[2 * s + 1]) != 0 && sl[2 * s] != key) s = (s + 1) & mask;
            if (r == 0) {
                r = (uint64_t)++count;
                sl[2 * s] = key;
                sl[2 * s + 1] = r;
                out[fresh++] = i;
                if (counted) p[r - 1] = b[r - 1] = 0;
            }
            if (counted) {
                p[r - 1] += 1;
                b[r - 1] += sz[i];
            }
        }
    }
    for (int k = 0; k < 6; k++)
        if (o[k] != Py_None) PyBuffer_Release(all[k]);
    if (err != NULL) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    return PyLong_FromSsize_t(fresh);
}

/* reslot(old, new): move every (key, record + 1) pair of slot array `old` into the empty
 * (all zero) slot array `new`, which must have room at a load of at most one half. */
static PyObject *reslot(PyObject *self, PyObject *args) {
    PyObject *oo, *no;
    Py_buffer ob, nb;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &oo, &no)) return NULL;
    if (get(oo, &ob, 0) < 0) return NULL;
    if (get(no, &nb, 1) < 0) {
        PyBuffer_Release(&ob);
        return NULL;
    }
    Py_ssize_t nold = ob.len / 16, nnew = nb.len / 16;
    unsigned bits = slot_bits(nnew);
    int ok = ((Py_ssize_t)1 << bits) == nnew && bits > 0 && nnew >= nold &&
             ob.len == nold * 16 && nb.len == nnew * 16;
    if (ok) {
        const uint64_t *from = ob.buf, mask = (uint64_t)nnew - 1;
        uint64_t *to = nb.buf;
        for (Py_ssize_t j = 0; j < nold; j++) {
            if (from[2 * j + 1] == 0) continue;
            uint64_t s = slot_of(from[2 * j], bits);
            while (to[2 * s + 1] != 0) s = (s + 1) & mask;
            to[2 * s] = from[2 * j];
            to[2 * s + 1] = from[2 * j + 1];
        }
    }
    PyBuffer_Release(&ob);
    PyBuffer_Release(&nb);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "reslot: the new slots must be a larger power of two");
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
