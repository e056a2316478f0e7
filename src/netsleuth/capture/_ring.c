/*
 * Walking the blocks of an AF_PACKET TPACKET_V3 receive ring (packet(7),
 * Documentation/networking/packet_mmap.rst, include/uapi/linux/if_packet.h).
 *
 * A block holds a variable number of frames chained by tp_next_offset: where frame k+1
 * starts depends on frame k's header, a sequential walk like a pcap record walk. At the
 * rates a mirror port carries (incident 1: 830k packets/s) a per-frame Python loop would
 * cost more than the decode, so this copies every frame of one block into the caller's
 * batch buffer in one call and fills the caller's int64 columns (offset, caplen, wirelen,
 * timestamp, and the packet type of the struct sockaddr_ll that follows each frame's
 * header: PACKET_OUTGOING for what the host sent). With receive VLAN offload the kernel strips the 802.1Q tag into
 * tp_vlan_tci; it is put back between the MAC addresses and the EtherType, as libpcap
 * does for its rings.
 *
 * The function never allocates and never writes outside the caller's buffers: a block
 * whose frames do not fit the block, or a batch that cannot hold them, is refused with
 * ValueError (the caller sized the batch from num_pkts and blk_len), never clamped.
 *
 * block_status is shared with the kernel: it is read with acquire ordering before the
 * frames, and handed back (TP_STATUS_KERNEL) with release ordering after the copy, the
 * pairing the kernel's smp_wmb()/flush_dcache_page in prb_close_block expects.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <linux/if_packet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VLAN_HLEN 4
#define ETH_ALEN2 12 /* destination + source MAC */
#define NCOL 5
/* Where a frame's struct sockaddr_ll starts, from its header (packet_mmap.rst: "TPACKET_ALIGN
 * (sizeof(struct tpacket3_hdr))"); the kernel puts the frame data after it (af_packet.c
 * tpacket_rcv: tp_hdrlen = TPACKET3_HDRLEN), so a tp_mac before its end is not a frame the
 * kernel wrote. */
#define SLL_AT TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
#define SLL_END (SLL_AT + sizeof(struct sockaddr_ll))

static int get_ring(PyObject *obj, Py_buffer *view, Py_ssize_t off, Py_ssize_t need) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE) < 0) return -1;
    if (off < 0 || need < 0 || off > view->len - need) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "block offset outside the ring");
        return -1;
    }
    return 0;
}

/* block_info(ring, off) -> (block_status, num_pkts, blk_len) */
static PyObject *block_info(PyObject *self, PyObject *args) {
    PyObject *ringobj;
    Py_ssize_t off;
    Py_buffer ring;
    (void)self;
    if (!PyArg_ParseTuple(args, "On", &ringobj, &off)) return NULL;
    if (get_ring(ringobj, &ring, off, sizeof(struct tpacket_block_desc)) < 0) return NULL;
    struct tpacket_block_desc *bd = (struct tpacket_block_desc *)((char *)ring.buf + off);
    uint32_t status = __atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
    uint32_t num = bd->hdr.bh1.num_pkts, len = bd->hdr.bh1.blk_len;
    PyBuffer_Release(&ring);
    return Py_BuildValue("kkk", (unsigned long)status, (unsigned long)num, (unsigned long)len);
}

/* release_block(ring, off): give the block back to the kernel. */
static PyObject *release_block(PyObject *self, PyObject *args) {
    PyObject *ringobj;
    Py_ssize_t off;
    Py_buffer ring;
    (void)self;
    if (!PyArg_ParseTuple(args, "On", &ringobj, &off)) return NULL;
    if (get_ring(ringobj, &ring, off, sizeof(struct tpacket_block_desc)) < 0) return NULL;
    struct tpacket_block_desc *bd = (struct tpacket_block_desc *)((char *)ring.buf + off);
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    PyBuffer_Release(&ring);
    Py_RETURN_NONE;
}

typedef struct {
    Py_buffer v;
    int64_t *p;
    Py_ssize_t n;
} col_t;

static int get_col(PyObject *obj, col_t *c) {
    if (PyObject_GetBuffer(obj, &c->v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (c->v.itemsize != 8 || c->v.format == NULL || strchr("qlL", c->v.format[0]) == NULL) {
        PyBuffer_Release(&c->v);
        PyErr_SetString(PyExc_TypeError, "columns must be int64 arrays");
        return -1;
    }
    c->p = (int64_t *)c->v.buf;
    c->n = c->v.len / 8;
    return 0;
}

/* One frame's copy; returns bytes written or -1 when it does not fit. */
static Py_ssize_t copy_frame(const struct tpacket3_hdr *h, const unsigned char *blk,
                             Py_ssize_t blk_len, Py_ssize_t hdr_off, unsigned char *dst,
                             Py_ssize_t room, int ethernet) {
    Py_ssize_t mac = hdr_off + h->tp_mac, snap = h->tp_snaplen;
    if (h->tp_mac < SLL_END || mac > blk_len || snap > blk_len - mac) return -1;
    const unsigned char *src = blk + mac;
    /* Only Ethernet frames have the MAC addresses the tag goes after (libpcap restores it
     * for DLT_EN10MB alone): a raw IP or 802.11 frame is copied as it is. */
    int tag = ethernet && (h->tp_status & TP_STATUS_VLAN_VALID) && snap >= ETH_ALEN2;
    Py_ssize_t out = snap + (tag ? VLAN_HLEN : 0);
    if (out > room) return -1;
    if (!tag) {
        memcpy(dst, src, (size_t)snap);
        return out;
    }
    /* A TCI of 0 with VLAN_VALID is a real tag (priority 0, VLAN 0). Before Linux 3.14
     * there is no tp_vlan_tpid (TP_STATUS_VLAN_TPID_VALID unset): 802.1Q then. */
    uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : 0x8100;
    uint16_t tci = (uint16_t)h->hv1.tp_vlan_tci;
    memcpy(dst, src, ETH_ALEN2);
    dst[12] = (unsigned char)(tpid >> 8);
    dst[13] = (unsigned char)tpid;
    dst[14] = (unsigned char)(tci >> 8);
    dst[15] = (unsigned char)tci;
    memcpy(dst + ETH_ALEN2 + VLAN_HLEN, src + ETH_ALEN2, (size_t)(snap - ETH_ALEN2));
    return out;
}

/* walk_block(ring, off, block_size, buf, pos, index, offset, caplen, wirelen, ts_ns,
 *            pkttype, ethernet) -> (frames, new_pos)
 * Copies the frames of the block at ring[off:off+block_size] into buf from byte `pos`,
 * filling the columns from row `index`; `ethernet`: the frames are Ethernet, so a VLAN
 * tag the kernel stripped into tp_vlan_tci is put back. */
static PyObject *walk_block(PyObject *self, PyObject *args) {
    PyObject *ringobj, *bufobj, *o[NCOL];
    Py_ssize_t off, bsize, pos, index;
    Py_buffer ring, buf;
    col_t col[NCOL];
    int ncol = 0, ok = 0, ethernet = 0;
    Py_ssize_t n = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnOnnOOOOOp", &ringobj, &off, &bsize, &bufobj, &pos, &index,
                          &o[0], &o[1], &o[2], &o[3], &o[4], &ethernet))
        return NULL;
    if (get_ring(ringobj, &ring, off, bsize) < 0) return NULL;
    if (PyObject_GetBuffer(bufobj, &buf, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&ring);
        return NULL;
    }
    for (; ncol < NCOL; ncol++)
        if (get_col(o[ncol], &col[ncol]) < 0) goto done;
    const unsigned char *blk = (const unsigned char *)ring.buf + off;
    const struct tpacket_block_desc *bd = (const struct tpacket_block_desc *)blk;
    if (bsize < (Py_ssize_t)sizeof(*bd)) goto bad_block;
    Py_ssize_t num = bd->hdr.bh1.num_pkts, hdr_off = bd->hdr.bh1.offset_to_first_pkt;
    for (int c = 0; c < NCOL; c++)
        if (index < 0 || num > col[c].n - index) {
            PyErr_SetString(PyExc_ValueError, "batch columns too short for the block");
            goto done;
        }
    if (pos < 0 || pos > buf.len) {
        PyErr_SetString(PyExc_ValueError, "batch position outside the buffer");
        goto done;
    }
    for (; n < num; n++) {
        if (hdr_off < (Py_ssize_t)sizeof(*bd) ||
            hdr_off > bsize - (Py_ssize_t)sizeof(struct tpacket3_hdr))
            goto bad_block;
        const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)(blk + hdr_off);
        Py_ssize_t w = copy_frame(h, blk, bsize, hdr_off, (unsigned char *)buf.buf + pos,
                                  buf.len - pos, ethernet);
        if (w < 0) goto bad_block;
        Py_ssize_t row = index + n;
        col[0].p[row] = pos;
        col[1].p[row] = w;
        col[2].p[row] = (int64_t)h->tp_len + (w - (Py_ssize_t)h->tp_snaplen);
        col[3].p[row] = (int64_t)h->tp_sec * 1000000000 + h->tp_nsec;
        /* Inside the frame's slot: copy_frame checked tp_mac >= SLL_END and mac <= bsize. */
        const struct sockaddr_ll *sll = (const struct sockaddr_ll *)((const unsigned char *)h + SLL_AT);
        col[4].p[row] = sll->sll_pkttype;
        pos += w;
        if (n + 1 < num) {
            if (h->tp_next_offset == 0) goto bad_block;
            hdr_off += h->tp_next_offset;
        }
    }
    ok = 1;
    goto done;
bad_block:
    PyErr_Format(PyExc_ValueError, "ring block at %zd: frame %zd does not fit the block or batch",
                 off, n);
done:
    for (int c = 0; c < ncol; c++) PyBuffer_Release(&col[c].v);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&ring);
    if (!ok) return NULL;
    return Py_BuildValue("nn", n, pos);
}

static PyMethodDef methods[] = {
    {"block_info", block_info, METH_VARARGS, "(block_status, num_pkts, blk_len) of one block."},
    {"release_block", release_block, METH_VARARGS, "Hand one block back to the kernel."},
    {"walk_block", walk_block, METH_VARARGS, "Copy one block's frames into a batch."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ring", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ring(void) { return PyModule_Create(&module); }
