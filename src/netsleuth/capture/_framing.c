/*
 * The sequential part of capture reading: finding where each record starts.
 *
 * A pcap record's position depends on the length field of the record before it, so the walk
 * cannot be vectorized; in pure Python it costs ~0.42 us a record, more than half of the
 * scan budget (1.5 M packets/s). Everything after the walk (field extraction, decoding,
 * checks) is NumPy over the offsets this returns. The functions only read the caller's
 * buffer between [start, end) and write offsets into the caller's int64 array from column
 * `at` on; they never allocate and never read past `end`. A walk stopped because the next
 * record is not all in [start, end) yet (ST_NEED_MORE) goes on from where it stopped, with
 * `at` past what it wrote, once more bytes are there: the reader walks each piece of a
 * buffer as it arrives, while the piece is in the CPU's cache (capture/chunks.py).
 *
 * Formats: pcap record header (libpcap savefile, draft-ietf-opsawg-pcap section 5):
 * ts_sec, ts_frac, caplen, origlen, each u32 in the file's byte order.
 * pcapng block (draft-ietf-opsawg-pcapng section 3.1): type u32, total length u32, body,
 * total length u32 again; total length is a multiple of 4 and at least 12.
 * ERF record (Endace ERF types; Wireshark wiretap/erf.c, erf_record.h): timestamp u64
 * little-endian (seconds << 32 | binary fraction), type u8 (0x80: an extension header
 * follows), flags u8, record length u16, loss counter u16, wire length u16 (big-endian),
 * then 8-byte extension headers while each one's first byte has 0x80, then a subheader
 * for some types, then the captured bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { ST_NEED_MORE = 0, ST_OUT_FULL = 1, ST_BAD_LENGTH = 2, ST_SECTION = 3, ST_TRAILER = 4 };

static uint32_t rd32(const unsigned char *p, int swapped) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

static int get_buffers(PyObject *bufobj, PyObject *outobj, Py_buffer *in, Py_buffer *out,
                       Py_ssize_t start, Py_ssize_t end) {
    if (PyObject_GetBuffer(bufobj, in, PyBUF_SIMPLE) < 0) return -1;
    if (PyObject_GetBuffer(outobj, out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(in);
        return -1;
    }
    if (start < 0 || end < start || end > in->len || out->len % 8 != 0) {
        PyBuffer_Release(in);
        PyBuffer_Release(out);
        PyErr_SetString(PyExc_ValueError, "bad start/end or output buffer");
        return -1;
    }
    return 0;
}

/* get_buffers, with `out` an int64 array of shape (rows, n) and 0 <= at <= n: refused
 * otherwise. */
static int get_rows(PyObject *bufobj, PyObject *outobj, Py_buffer *in, Py_buffer *out,
                    Py_ssize_t start, Py_ssize_t end, Py_ssize_t rows, Py_ssize_t at) {
    if (get_buffers(bufobj, outobj, in, out, start, end) < 0) return -1;
    if (out->len % (8 * rows) != 0 || at < 0 || at > out->len / (8 * rows)) {
        PyBuffer_Release(in);
        PyBuffer_Release(out);
        PyErr_Format(PyExc_ValueError, "output must be int64 of shape (%zd, n), at in 0..n", rows);
        return -1;
    }
    return 0;
}

/* walk_pcap(buf, start, end, swapped, max_caplen, frac_scale, out, hdr, at) -> (count, pos, status)
 * out is an int64 array of shape (4, cap): rows are data offset, caplen, wire length and
 * timestamp (seconds * 1e9 + fraction * frac_scale): the header fields are in cache now.
 * hdr is the record header's size: 16, or more for the variants that append fields to it
 * (seconds, fraction, caplen and wire length always come first: wiretap/libpcap.h). */
static PyObject *walk_pcap(PyObject *self, PyObject *args) {
    PyObject *bufobj, *outobj;
    Py_ssize_t start, end;
    int swapped;
    unsigned long max_caplen;
    long long frac_scale;
    Py_ssize_t hdr, at;
    Py_buffer in, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnpkLOnn", &bufobj, &start, &end, &swapped, &max_caplen,
                          &frac_scale, &outobj, &hdr, &at))
        return NULL;
    if (hdr < 16 || hdr > 64) {  /* the largest known variant's is 28 */
        PyErr_SetString(PyExc_ValueError, "record header size must be 16..64 bytes");
        return NULL;
    }
    if (get_rows(bufobj, outobj, &in, &out, start, end, 4, at) < 0) return NULL;
    const unsigned char *b = (const unsigned char *)in.buf;
    Py_ssize_t cap = out.len / 32, n = at, pos = start;
    int64_t *o_off = (int64_t *)out.buf, *o_cap = o_off + cap, *o_wire = o_cap + cap;
    int64_t *o_ts = o_wire + cap;
    int status = ST_NEED_MORE;
    while (1) {
        if (n == cap) { status = ST_OUT_FULL; break; }
        if (end - pos < hdr) break;
        uint32_t caplen = rd32(b + pos + 8, swapped);
        if (caplen > max_caplen) { status = ST_BAD_LENGTH; break; }
        if ((Py_ssize_t)caplen > end - pos - hdr) break;
        o_off[n] = pos + hdr;
        o_cap[n] = caplen;
        o_wire[n] = rd32(b + pos + 12, swapped);
        o_ts[n] = (int64_t)rd32(b + pos, swapped) * 1000000000LL +
                  (int64_t)rd32(b + pos + 4, swapped) * frac_scale;
        n++;
        pos += hdr + (Py_ssize_t)caplen;
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return Py_BuildValue("nni", n - at, pos, status);
}

/* The flags word of an EPB's epb_flags option (code 2, 4 bytes: draft section 4.3.1), the
 * obsolete PB's pack_flags alike (appendix A), 0 where there is none: the options from `p`
 * to the block's trailer at `end`, each code, length and value padded to 32 bits,
 * opt_endofopt (0) ending them, at most PCAPNG_MAX_OPTIONS looked at (writers put the flags
 * first or second). The reader takes the direction (bits 0-1) and the FCS length (bits
 * 5-8) from it. */
enum { PCAPNG_MAX_OPTIONS = 8 };

static int64_t epb_flags(const unsigned char *b, int64_t p, int64_t end, int sw) {
    for (int k = 0; k < PCAPNG_MAX_OPTIONS && p + 4 <= end; k++) {
        uint32_t head = rd32(b + p, 0);
        unsigned code, size;
        if (sw) {
            code = (unsigned)(__builtin_bswap32(head) >> 16);
            size = (unsigned)(__builtin_bswap32(head) & 0xffffu);
        } else {
            code = (unsigned)(head & 0xffffu);
            size = (unsigned)(head >> 16);
        }
        if (code == 0 || p + 4 + (int64_t)size > end) return 0;
        if (code == 2 && size == 4) return (int64_t)rd32(b + p + 4, sw);
        p += 4 + (((int64_t)size + 3) & ~(int64_t)3);
    }
    return 0;
}

/* walk_pcapng(buf, start, end, swapped, max_block, out, at) -> (count, pos, status, swapped)
 * out is an int64 array of shape (8, cap), a column per block walked: its offset | swapped
 * << 62 (its section's byte order), type, total length, and for a packet block long enough
 * for its fixed fields (EPB and PB 32 bytes, SPB 16: draft sections 4.3, 4.4, appendix A)
 * the interface id (PB: 16 bits), raw timestamp (high << 32 | low, as the bits of a u64),
 * captured length as written, original length and epb_flags word; 0 where a block has
 * none. The fields are read here because the walk has the block's first and last bytes in
 * cache already (the header, the trailer and the options before it): gathered in NumPy
 * afterwards they cost more than the walk itself. A Section Header Block is listed like
 * any block and sets the byte order from its magic (draft section 4.1), so a batch spans
 * sections, also sections that flip byte order (1M one-packet sections cost 1M batches
 * before). The walk stops before an SHB whose magic is neither order or whose length is
 * below the 28-byte minimum: the caller reports it. */
static PyObject *walk_pcapng(PyObject *self, PyObject *args) {
    PyObject *bufobj, *outobj;
    Py_ssize_t start, end;
    int swapped;
    unsigned long max_block;
    Py_ssize_t at;
    Py_buffer in, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnpkOn", &bufobj, &start, &end, &swapped, &max_block, &outobj,
                          &at))
        return NULL;
    if (get_rows(bufobj, outobj, &in, &out, start, end, 8, at) < 0) return NULL;
    const unsigned char *b = (const unsigned char *)in.buf;
    Py_ssize_t cap = out.len / 64, n = at, pos = start;
    int64_t *o = (int64_t *)out.buf;
    int64_t *o_type = o + cap, *o_len = o_type + cap, *o_if = o_len + cap, *o_ts = o_if + cap;
    int64_t *o_cap = o_ts + cap, *o_wire = o_cap + cap, *o_flags = o_wire + cap;
    int status = ST_NEED_MORE;
    while (1) {
        if (n == cap) { status = ST_OUT_FULL; break; }
        if (end - pos < 12) break;
        int sw = swapped;
        uint32_t type = rd32(b + pos, sw);  /* 0x0A0D0D0A reads the same in both orders */
        if (type == 0x0A0D0D0Au) {
            uint32_t bom = rd32(b + pos + 8, 0);
            if (bom == 0x1A2B3C4Du) sw = 0;
            else if (bom == 0x4D3C2B1Au) sw = 1;
            else { status = ST_SECTION; break; }
        }
        uint32_t len = rd32(b + pos + 4, sw);
        if (type == 0x0A0D0D0Au && len < 28) { status = ST_SECTION; break; }
        if (len < 12 || len % 4 != 0 || len > max_block) { status = ST_BAD_LENGTH; break; }
        if ((Py_ssize_t)len > end - pos) break;
        if (rd32(b + pos + len - 4, sw) != len) { status = ST_TRAILER; break; }
        swapped = sw;
        const unsigned char *p = b + pos;
        int64_t iface = 0, ts = 0, caplen = 0, wire = 0, flags = 0;
        if ((type == 6 || type == 2) && len >= 32) {  /* EPB, PB */
            uint32_t word = rd32(p + 8, sw);
            /* PB: a 16-bit interface id, then a 16-bit drops count, in the block's order. */
            iface = type == 6 ? (int64_t)word : (int64_t)(sw ? word >> 16 : word & 0xffffu);
            ts = (int64_t)((uint64_t)rd32(p + 12, sw) << 32 | (uint64_t)rd32(p + 16, sw));
            caplen = (int64_t)rd32(p + 20, sw);
            wire = (int64_t)rd32(p + 24, sw);
            /* Options follow the packet data padded to 32 bits. */
            int64_t opts = (int64_t)pos + 28 + ((caplen + 3) & ~(int64_t)3);
            flags = epb_flags(b, opts, (int64_t)pos + len - 4, sw);
        } else if (type == 3 && len >= 16) {  /* SPB: the original length only */
            wire = (int64_t)rd32(p + 8, sw);
        }
        o[n] = (int64_t)pos | ((int64_t)sw << 62);
        o_type[n] = (int64_t)type;
        o_len[n] = (int64_t)len;
        o_if[n] = iface;
        o_ts[n] = ts;
        o_cap[n] = caplen;
        o_wire[n] = wire;
        o_flags[n] = flags;
        n++;
        pos += (Py_ssize_t)len;
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return Py_BuildValue("nniN", n - at, pos, status, PyBool_FromLong(swapped));
}

/* ERF record types with a subheader before the captured bytes (wiretap/erf.c,
 * erf_read_header): the Ethernet types' 2 bytes (offset, pad), the multichannel types' and
 * AAL2's 4. */
static int erf_subheader(unsigned type) {
    switch (type) {
    case 2: case 11: case 16: case 20: return 2;        /* ETH, COLOR_ETH, DSM_, HASH_ */
    case 5: case 6: case 7: case 8: case 9: case 12: case 17: case 18: return 4;
    default: return 0;
    }
}

/* walk_erf(buf, start, end, out, at) -> (count, pos, status)
 * out is an int64 array of shape (5, cap): rows are data offset, caplen, wire length,
 * timestamp in ns, and type | flags << 8 | loss counter << 16 | bytes before the data << 32 |
 * record length << 48 (read as unsigned). PAD records (type byte 48:
 * Wireshark skips them the same way, unmasked) are stepped over and not listed. A record
 * shorter than its header, empty (not PAD), or whose extension headers or subheader do
 * not fit its length stops the walk with ST_BAD_LENGTH; the caller names it. */
static PyObject *walk_erf(PyObject *self, PyObject *args) {
    PyObject *bufobj, *outobj;
    Py_ssize_t start, end, at;
    Py_buffer in, out;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnOn", &bufobj, &start, &end, &outobj, &at)) return NULL;
    if (get_rows(bufobj, outobj, &in, &out, start, end, 5, at) < 0) return NULL;
    const unsigned char *b = (const unsigned char *)in.buf;
    Py_ssize_t cap = out.len / 40, n = at, pos = start;
    int64_t *o_off = (int64_t *)out.buf, *o_cap = o_off + cap, *o_wire = o_cap + cap;
    int64_t *o_ts = o_wire + cap, *o_info = o_ts + cap;
    int status = ST_NEED_MORE;
    while (1) {
        if (n == cap) { status = ST_OUT_FULL; break; }
        if (end - pos < 16) break;
        const unsigned char *r = b + pos;
        Py_ssize_t rlen = (Py_ssize_t)(r[10] << 8 | r[11]);
        if (rlen < 16 || (rlen == 16 && r[8] != 48)) { status = ST_BAD_LENGTH; break; }
        if (rlen > end - pos) break;
        if (r[8] == 48) { pos += rlen; continue; }
        Py_ssize_t skip = 16;
        unsigned more = r[8] & 0x80;
        while (more && skip + 8 <= rlen) {
            more = r[skip] & 0x80;
            skip += 8;
        }
        skip += erf_subheader(r[8] & 0x7f);
        if (more || skip > rlen) { status = ST_BAD_LENGTH; break; }
        uint64_t ts = 0;
        for (int k = 7; k >= 0; k--) ts = ts << 8 | r[k];  /* little-endian, any host */
        /* The fraction in ns, rounded to nearest as Wireshark's erf_read_header does. */
        uint64_t frac = (ts & 0xffffffffULL) * 1000000000ULL;
        frac += (frac & 0x80000000ULL) << 1;
        int64_t wlen = (int64_t)(r[14] << 8 | r[15]);
        o_off[n] = pos + skip;
        o_cap[n] = wlen < rlen - skip ? wlen : rlen - skip;
        o_wire[n] = wlen;
        o_ts[n] = (int64_t)(ts >> 32) * 1000000000LL + (int64_t)(frac >> 32);
        o_info[n] = (int64_t)((uint64_t)r[8] | (uint64_t)r[9] << 8 |
                              (uint64_t)(r[12] << 8 | r[13]) << 16 | (uint64_t)skip << 32 |
                              (uint64_t)rlen << 48);
        n++;
        pos += rlen;
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    return Py_BuildValue("nni", n - at, pos, status);
}

static PyMethodDef methods[] = {
    {"walk_pcap", walk_pcap, METH_VARARGS, "Find pcap record header offsets."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Find pcapng block offsets up to the next SHB."},
    {"walk_erf", walk_erf, METH_VARARGS, "Find ERF record data offsets and header fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_framing", "Sequential record walk for capture files.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__framing(void) { return PyModule_Create(&moddef); }
