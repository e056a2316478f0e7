/*
 * The sequential part of reading ftrace's binary ring buffer: finding where each event
 * starts in the pages read from per_cpu/cpuN/trace_pipe_raw.
 *
 * Like a pcap record walk, an event's position depends on the length of the event before
 * it, and under a drop flood there are >100k events a second: in Python the walk alone
 * would cost several percent of a CPU. Decoding the event fields is NumPy over the offsets
 * this returns. The function reads only the caller's buffer and writes only the caller's
 * int64 array; it never allocates.
 *
 * Page layout (the running kernel describes it in events/header_page; kernel
 * kernel/trace/ring_buffer.c, struct buffer_data_page): a u64 timestamp, a `commit` word
 * whose low 30 bits are the bytes of event data on the page (bit 31 RB_MISSED_EVENTS,
 * bit 30 RB_MISSED_STORED: the count of missed events is stored right after the data),
 * then the data. Each event starts with a 32-bit header, type_len in the low 5 bits and
 * time_delta in the high 27 (events/header_event; struct ring_buffer_event):
 *   type_len 1..28: data of type_len * 4 bytes follows the header;
 *   type_len 0: array[0] holds the length, data follows it, total 4 + array[0] bytes;
 *   29 padding (total 4 + array[0]; with time_delta 0 it fills the rest of the page),
 *   30 time extend and 31 absolute time stamp: 8 bytes, no data.
 * Timestamps are not needed (rates come from the reader's clock), so deltas are skipped.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t rd32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* tracefs pages are in the host's byte order */
    return v;
}

static uint64_t rd_commit(const unsigned char *p, int size) {
    if (size == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    return rd32(p);
}

/* walk(buf, page_size, commit_off, commit_size, data_off, out) -> (events, missed, bad)
 * buf holds whole pages back to back. out is an int64 array of shape (2, cap): the data
 * offset (into buf) and data length of each event. `missed` sums the missed-event counts
 * the kernel stored on the pages (RB_MISSED_STORED); `bad` counts pages whose commit or
 * event lengths did not fit the page (their remaining events are skipped, not guessed). */
static PyObject *walk(PyObject *self, PyObject *args) {
    PyObject *bufobj, *outobj;
    Py_ssize_t page_size, commit_off, commit_size, data_off;
    Py_buffer in, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnnnO", &bufobj, &page_size, &commit_off, &commit_size,
                          &data_off, &outobj))
        return NULL;
    if (PyObject_GetBuffer(bufobj, &in, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(outobj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    if (page_size <= 0 || in.len % page_size != 0 || out.len % 16 != 0 ||
        (commit_size != 4 && commit_size != 8) || commit_off < 0 || data_off < 0 ||
        commit_off + commit_size > page_size || data_off >= page_size) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "bad page geometry or output buffer");
        return NULL;
    }
    const unsigned char *buf = in.buf;
    int64_t *offs = out.buf;
    Py_ssize_t cap = out.len / 16;
    int64_t *lens = offs + cap;
    Py_ssize_t n = 0;
    unsigned long long missed = 0;
    Py_ssize_t bad = 0;
    Py_ssize_t pages = in.len / page_size;
    for (Py_ssize_t pg = 0; pg < pages; pg++) {
        const unsigned char *page = buf + pg * page_size;
        uint64_t commit = rd_commit(page + commit_off, (int)commit_size);
        Py_ssize_t size = (Py_ssize_t)(commit & 0x3fffffffu);
        Py_ssize_t end = data_off + size;
        if (end > page_size) {
            bad++;
            continue;
        }
        if ((commit & 0x40000000u) && end + 8 <= page_size) {
            uint64_t m;
            memcpy(&m, page + end, 8);
            missed += m;
        }
        Py_ssize_t pos = data_off;
        while (pos + 4 <= end) {
            uint32_t hdr = rd32(page + pos);
            uint32_t type_len = hdr & 31u;
            Py_ssize_t data, len, total;
            if (type_len >= 1 && type_len <= 28) {
                data = pos + 4;
                len = (Py_ssize_t)type_len * 4;
                total = 4 + len;
            } else if (type_len == 0) {
                if (pos + 8 > end) { bad++; break; }
                uint32_t a0 = rd32(page + pos + 4);
                if (a0 < 4) { bad++; break; }
                data = pos + 8;
                len = (Py_ssize_t)a0 - 4;
                total = 4 + (Py_ssize_t)a0;
            } else if (type_len == 29) {
                if ((hdr >> 5) == 0) break; /* padding to the end of the page */
                if (pos + 8 > end) { bad++; break; }
                total = 4 + (Py_ssize_t)rd32(page + pos + 4);
                pos += total;
                continue;
            } else { /* 30, 31: time extend / time stamp */
                pos += 8;
                continue;
            }
            if (pos + total > end) { bad++; break; }
            if (n < cap) {
                offs[n] = pg * page_size + data;
                lens[n] = len;
                n++;
            }
            pos += total;
        }
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return Py_BuildValue("nKn", n, missed, bad);
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "Event data offsets and lengths in ftrace ring-buffer pages."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ringbuf", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ringbuf(void) { return PyModule_Create(&module); }
