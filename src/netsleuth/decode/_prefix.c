/*
 * The common prefix of most packets, decoded in one sequential pass: Ethernet II, up to two
 * VLAN tags, an IPv4 header that is not a fragment or an IPv6 header without extension
 * headers, then TCP or UDP.
 *
 * Why in C: the vectorized decoders (ethernet.py, vlan.py, ipv4.py, ipv6.py, tcp.py, udp.py)
 * remain the reference and decode everything; but for the ~60% of a typical capture that is
 * plain Ethernet/IP/TCP|UDP they cost ~470 ns a packet in NumPy passes (row gathers,
 * scatters, one pass per field) against a budget of ~400 ns for the whole scan
 * (design.md: 1.5 M packets/s end to end). Here each packet's bytes are touched once.
 *
 * The contract that keeps the two in step: this pass writes a layer only when that layer
 * would decode with no anomaly, and then writes exactly what the NumPy decoder writes (the
 * same fields, the same values, the same cursor: pos, ns, key, end, wend). At the first
 * thing it does not handle (a fragment, a tunnel, an option it does not check, anything
 * malformed or truncated) it stops with the cursor where the NumPy decoders would have left
 * it, and the engine carries on from there. tests/test_prefix.py decodes real, crafted and
 * mutated captures both ways and compares every column.
 *
 * Bounds: a packet is read only inside [pos, end) and only if end <= the buffer's length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* NS values and FrameKey/L2 codes, as in decode/table.py. */
enum { NS_DONE = 0, NS_LINKTYPE = 1, NS_ETHERTYPE = 3, NS_IPPROTO = 4, NS_UDPPORT = 5 };
enum { L2_ETHERNET = 1 };
enum { LINKTYPE_ETHERNET = 1 };

/* Column order and item sizes; decode/prefix.py passes the arrays in this order. */
enum {
    C_START, C_END, C_WEND, C_POS, C_NS, C_KEY, C_L2, C_ETHERTYPE, C_VLAN_N, C_VLAN1,
    C_VLAN2, C_NIP, C_VER, C_OFF, C_HLEN, C_TOT_LEN, C_IDENT, C_FLAGS, C_FRAG_DATA, C_TTL,
    C_FLOW_LABEL, C_PROTO, C_CHECKSUM, C_CSUM_OK, C_SRC4, C_DST4, C_SRC6, C_DST6, C_L4_OFF,
    C_SPORT, C_DPORT, C_TCP_FLAGS, C_L4_LEN, NCOLS
};
static const Py_ssize_t ITEM[NCOLS] = {
    8, 8, 8, 8, 1, 8, 1, 2, 1, 2, 2, 1, 1, 4, 2, 4, 4, 1, 4, 1, 4, 1, 2, 1, 4, 4, 16, 16, 4,
    2, 2, 2, 4,
};

static inline unsigned be16(const unsigned char *b, int64_t p) {
    return ((unsigned)b[p] << 8) | b[p + 1];
}
static inline uint32_t be32(const unsigned char *b, int64_t p) {
    return ((uint32_t)b[p] << 24) | ((uint32_t)b[p + 1] << 16) | ((uint32_t)b[p + 2] << 8) |
           b[p + 3];
}
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* RFC 1071: the one's complement sum over the header, folded; 0xFFFF when it verifies. */
static int ipv4_csum_ok(const unsigned char *b, int64_t p, int hlen) {
    uint32_t sum = 0;
    for (int k = 0; k < hlen; k += 2) sum += be16(b, p + k);
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return sum == 0xFFFF;
}

/* IPv6 extension headers (ipv6.py EXT_8, AH, FRAGMENT): left to the NumPy chain walk. */
static int ipv6_ext(unsigned nh) {
    return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60 || nh == 135 ||
           nh == 139 || nh == 140;
}

typedef struct {
    Py_buffer v[NCOLS];
    int64_t *start, *end, *wend, *pos, *key;
    uint8_t *ns, *l2, *vlan_n, *nip, *ver, *flags, *ttl, *proto, *csum_ok, *src6, *dst6;
    uint16_t *ethertype, *vlan1, *vlan2, *hlen, *checksum, *sport, *dport, *tcp_flags;
    int32_t *off, *frag_data, *l4_off;
    uint32_t *tot_len, *ident, *flow_label, *src4, *dst4, *l4_len;
} Cols;

static void hand_on(Cols *c, Py_ssize_t i, int64_t pos, int ns, int64_t key) {
    c->pos[i] = pos;
    c->ns[i] = (uint8_t)ns;
    c->key[i] = key;
}

/* TCP (tcp.py) or UDP (udp.py) at p, for a packet whose IP layer was just committed. */
static void transport(Cols *c, const unsigned char *b, Py_ssize_t i, int64_t p, unsigned proto,
                      const int16_t *flat) {
    int64_t e = c->end[i];
    if (proto == 6) {
        if (p + 20 > e) return;
        unsigned of = be16(b, p + 12);
        int64_t doff = (int64_t)(of >> 12) * 4;
        if (doff < 20 || p + doff > e) return;
        c->l4_off[i] = (int32_t)(p - c->start[i]);
        c->sport[i] = (uint16_t)be16(b, p);
        c->dport[i] = (uint16_t)be16(b, p + 2);
        c->tcp_flags[i] = (uint16_t)(of & 0x0FFF);
        c->ns[i] = NS_DONE;
        return;
    }
    if (proto == 17) {
        if (p + 8 > e) return;
        unsigned ulen = be16(b, p + 4);
        if ((ulen < 8 && ulen != 0) || p + (int64_t)ulen > c->wend[i]) return;
        unsigned dport = be16(b, p + 2);
        c->l4_off[i] = (int32_t)(p - c->start[i]);
        c->sport[i] = (uint16_t)be16(b, p);
        c->dport[i] = (uint16_t)dport;
        c->l4_len[i] = ulen;
        if (ulen != 0) {
            c->end[i] = min64(c->end[i], p + ulen);
            c->wend[i] = min64(c->wend[i], p + ulen);
        }
        hand_on(c, i, p + 8, NS_UDPPORT, dport);
        /* An unbound port ends the descent silently, as engine._unbound does. */
        if (flat[(NS_UDPPORT << 16) | dport] == 0) c->ns[i] = NS_DONE;
        return;
    }
    if (flat[(NS_IPPROTO << 16) | proto] == 0) c->ns[i] = NS_DONE;
}

static void ipv4(Cols *c, const unsigned char *b, Py_ssize_t i, int64_t p, const int16_t *flat) {
    int64_t e = c->end[i], we = c->wend[i];
    if (p + 20 > e) return;
    unsigned vihl = b[p];
    int hlen = (int)(vihl & 0x0F) * 4;
    if ((vihl >> 4) != 4 || hlen < 20 || p + hlen > e) return;
    int64_t tot = be16(b, p + 2);
    unsigned ff = be16(b, p + 6);
    /* Total length 0 (BIG TCP) and fragments are the NumPy decoder's (ipv4.py). */
    if (tot == 0 || (ff & 0x3FFF) != 0) return; /* MF or an offset (RFC 791 3.1) */
    if (tot < hlen || p + tot > we) return;
    int64_t s = c->start[i];
    unsigned proto = b[p + 9];
    c->csum_ok[i] = (uint8_t)ipv4_csum_ok(b, p, hlen);
    c->ver[i] = 4;
    c->off[i] = (int32_t)(p - s);
    c->hlen[i] = (uint16_t)hlen;
    c->tot_len[i] = (uint32_t)tot;
    c->ident[i] = be16(b, p + 4);
    c->flags[i] = (uint8_t)((ff >> 13) & 3);
    c->frag_data[i] = (int32_t)(p + hlen - s);
    c->ttl[i] = b[p + 8];
    c->proto[i] = (uint8_t)proto;
    c->checksum[i] = (uint16_t)be16(b, p + 10);
    c->src4[i] = be32(b, p + 12);
    c->dst4[i] = be32(b, p + 16);
    c->nip[i] = 1;
    c->end[i] = min64(e, p + tot);
    c->wend[i] = min64(we, p + tot);
    hand_on(c, i, p + hlen, NS_IPPROTO, proto);
    transport(c, b, i, p + hlen, proto, flat);
}

static void ipv6(Cols *c, const unsigned char *b, Py_ssize_t i, int64_t p, const int16_t *flat) {
    int64_t e = c->end[i], we = c->wend[i];
    if (p + 40 > e) return;
    uint32_t vtf = be32(b, p);
    int64_t plen = be16(b, p + 4);
    unsigned nh = b[p + 6];
    /* Jumbograms (payload length 0) and extension headers are ipv6.py's. */
    if ((vtf >> 28) != 6 || plen == 0 || p + 40 + plen > we || ipv6_ext(nh)) return;
    c->ver[i] = 6;
    c->off[i] = (int32_t)(p - c->start[i]);
    c->tot_len[i] = (uint32_t)(plen + 40);
    c->ttl[i] = b[p + 7];
    c->flow_label[i] = vtf & 0xFFFFF;
    memcpy(c->src6 + 16 * i, b + p + 8, 16);
    memcpy(c->dst6 + 16 * i, b + p + 24, 16);
    c->proto[i] = (uint8_t)nh;
    c->hlen[i] = 40;
    c->nip[i] = 1;
    c->end[i] = min64(e, p + 40 + plen);
    c->wend[i] = min64(we, p + 40 + plen);
    hand_on(c, i, p + 40, NS_IPPROTO, nh);
    transport(c, b, i, p + 40, nh, flat);
}

static void packet(Cols *c, const unsigned char *b, Py_ssize_t blen, Py_ssize_t i,
                   const int16_t *flat) {
    if (c->ns[i] != NS_LINKTYPE || c->key[i] != LINKTYPE_ETHERNET) return;
    int64_t p = c->pos[i], e = c->end[i];
    if (p < 0 || e > blen || p + 14 > e) return;
    unsigned typ = be16(b, p + 12);
    if (typ < 1536) return; /* an 802.3 length field: LLC, ethernet.length_field */
    c->l2[i] = L2_ETHERNET;
    c->ethertype[i] = (uint16_t)typ;
    p += 14;
    hand_on(c, i, p, NS_ETHERTYPE, typ);
    /* 802.1Q, 802.1ad, legacy QinQ (vlan.py); two tags here, deeper stacks in vlan.py. */
    while ((typ == 0x8100 || typ == 0x88A8 || typ == 0x9100) && c->vlan_n[i] < 2) {
        if (p + 4 > e) return;
        unsigned inner = be16(b, p + 2);
        if (inner < 1536) return;
        unsigned vid = be16(b, p) & 0x0FFF;
        if (c->vlan_n[i] == 0)
            c->vlan1[i] = (uint16_t)vid;
        else
            c->vlan2[i] = (uint16_t)vid;
        c->vlan_n[i]++;
        typ = inner;
        c->ethertype[i] = (uint16_t)typ;
        p += 4;
        hand_on(c, i, p, NS_ETHERTYPE, typ);
    }
    if (typ == 0x0800)
        ipv4(c, b, i, p, flat);
    else if (typ == 0x86DD)
        ipv6(c, b, i, p, flat);
}

/* prefix(buf, columns, flat) -> packets finished (ns == DONE afterwards). */
static PyObject *prefix(PyObject *self, PyObject *args) {
    PyObject *bufobj, *seq, *flatobj;
    Py_buffer in, fl;
    Cols c;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO", &bufobj, &seq, &flatobj)) return NULL;
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) != NCOLS) {
        PyErr_SetString(PyExc_ValueError, "columns: a tuple in _prefix.c's order");
        return NULL;
    }
    if (PyObject_GetBuffer(bufobj, &in, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(flatobj, &fl, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    int got = 0;
    Py_ssize_t n = -1;
    int ok = fl.len >= (Py_ssize_t)((NS_UDPPORT + 1) << 16) * 2;
    for (; ok && got < NCOLS; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(seq, got), &c.v[got],
                               PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
            ok = -1;
            break;
        }
        if (n < 0) n = c.v[got].len / ITEM[got];
        if (c.v[got].len != n * ITEM[got]) {
            got++;
            ok = 0;
            break;
        }
    }
    if (ok != 1) {
        for (int k = 0; k < got; k++) PyBuffer_Release(&c.v[k]);
        PyBuffer_Release(&in);
        PyBuffer_Release(&fl);
        if (ok == 0) PyErr_SetString(PyExc_ValueError, "column sizes do not match");
        return NULL;
    }
#define COL(name, IDX, T) c.name = (T *)c.v[IDX].buf
    COL(start, C_START, int64_t); COL(end, C_END, int64_t); COL(wend, C_WEND, int64_t);
    COL(pos, C_POS, int64_t); COL(ns, C_NS, uint8_t); COL(key, C_KEY, int64_t);
    COL(l2, C_L2, uint8_t); COL(ethertype, C_ETHERTYPE, uint16_t);
    COL(vlan_n, C_VLAN_N, uint8_t); COL(vlan1, C_VLAN1, uint16_t);
    COL(vlan2, C_VLAN2, uint16_t); COL(nip, C_NIP, uint8_t); COL(ver, C_VER, uint8_t);
    COL(off, C_OFF, int32_t); COL(hlen, C_HLEN, uint16_t); COL(tot_len, C_TOT_LEN, uint32_t);
    COL(ident, C_IDENT, uint32_t); COL(flags, C_FLAGS, uint8_t);
    COL(frag_data, C_FRAG_DATA, int32_t); COL(ttl, C_TTL, uint8_t);
    COL(flow_label, C_FLOW_LABEL, uint32_t); COL(proto, C_PROTO, uint8_t);
    COL(checksum, C_CHECKSUM, uint16_t); COL(csum_ok, C_CSUM_OK, uint8_t);
    COL(src4, C_SRC4, uint32_t); COL(dst4, C_DST4, uint32_t); COL(src6, C_SRC6, uint8_t);
    COL(dst6, C_DST6, uint8_t); COL(l4_off, C_L4_OFF, int32_t); COL(sport, C_SPORT, uint16_t);
    COL(dport, C_DPORT, uint16_t); COL(tcp_flags, C_TCP_FLAGS, uint16_t);
    COL(l4_len, C_L4_LEN, uint32_t);
#undef COL
    const unsigned char *b = (const unsigned char *)in.buf;
    const int16_t *flat = (const int16_t *)fl.buf;
    Py_ssize_t done = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        packet(&c, b, in.len, i, flat);
        done += c.ns[i] == NS_DONE;
    }
    for (int k = 0; k < NCOLS; k++) PyBuffer_Release(&c.v[k]);
    PyBuffer_Release(&in);
    PyBuffer_Release(&fl);
    return PyLong_FromSsize_t(done);
}

static PyMethodDef methods[] = {
    {"prefix", prefix, METH_VARARGS, "Decode the Ethernet/IP/TCP|UDP prefix of each packet."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_prefix", "The common packet prefix, decoded in one pass.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__prefix(void) { return PyModule_Create(&moddef); }
