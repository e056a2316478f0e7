/*
 * The common packet shapes, decoded in one sequential pass: Ethernet II and VLAN tags, IPv4
 * (fragments included) or IPv6 without extension headers, TCP or UDP; and through the
 * tunnels of a typical capture: GRE version 0 (IPv4, IPv6 or Ethernet inside) and version 1
 * with PPP (PPTP), IPIP, IPv6 in IP, and VXLAN, to the inner IP and transport headers.
 * Wi-Fi monitor captures too: radiotap and the 802.11 data frame behind it (one decoder
 * call, radiotap.py's), bare 802.11, and LLC/SNAP naming the EtherType (llc.py): there
 * the NumPy rounds cost ~0.15 s per million packets, a quarter of the whole scan. And
 * Linux cooked captures (tcpdump -i any: SLL, and SLL2, libpcap 1.10's default for "any"),
 * whose NumPy round and second call of this pass cost ~20% of the whole scan.
 *
 * Why in C: the vectorized decoders (ethernet.py, vlan.py, ipv4.py, ipv6.py, tcp.py, udp.py,
 * gre.py, ppp.py, vxlan.py) remain the reference and decode everything; but every header
 * costs them a round of NumPy passes over index subsets (gathers, scatters, one pass per
 * field, ~30 us fixed per call), and a tunnelled packet takes six to nine rounds. Against a
 * budget of ~400 ns a packet for the whole scan or steer (README.md, "Speed": 1.5 M
 * packets/s end to end), here each packet's bytes are touched once.
 *
 * The contract that keeps the two in step: each step here is one decoder call of the
 * engine's rounds (one header: a VLAN tag, an IP header, a GRE header...). A step is taken
 * only when that decoder would finish the header with no anomaly, and then it writes exactly
 * what the decoder writes (the same fields, the same values, the same cursor: pos, ns, key,
 * end, wend; the tunnel bookkeeping of engine._enter_tunnel; the inner-layer reset of
 * ipv4.store_ip). At the first header it does not handle (an option it does not check,
 * anything malformed, truncated or unusual) it stops before writing anything for that
 * header, and the engine carries on from there. `depth` counts the steps taken per packet,
 * so the engine's MAX_ROUNDS bound on headers per packet stays exact.
 * tests/test_prefix.py decodes real, crafted and mutated captures both ways and compares
 * every column.
 *
 * Bounds: a packet is read only inside [pos, end) and only if end <= the buffer's length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* NS, FrameKey, L2 and Tunnel codes, as in decode/table.py. */
enum { NS_DONE = 0, NS_LINKTYPE = 1, NS_FRAME = 2, NS_ETHERTYPE = 3, NS_IPPROTO = 4,
       NS_UDPPORT = 5, NS_PPP = 6, NS_TUNNEL_PROTO = 7, NS_COUNT = 8 };
enum { FRAME_ETHERNET = 1, FRAME_LLC = 2 };
enum { L2_ETHERNET = 1, L2_SLL = 3, L2_SLL2 = 4, L2_IEEE80211 = 14 };
/* capture/batch.py INBOUND, OUTBOUND (pcapng's epb_flags directions: PacketTable.way). */
enum { WAY_IN = 1, WAY_OUT = 2 };
enum { TUN_NONE = 0, TUN_GRE = 1, TUN_PPTP = 2, TUN_IPIP = 3, TUN_IP6 = 4, TUN_VXLAN = 5 };
/* vlan.py MAX_TAGS. */
enum { MAX_TAGS = 8 };
/* The compiled twins of the NumPy decoders. Which (namespace, key) takes which of them is
 * not written here: prefix.py maps each binding of the registry (decode/registry.py, the one
 * dispatch table) to its twin and passes that in as `steps`, indexed by the binding numbers
 * of the registry's flat table. The module exports these codes (STEP_*) for prefix.py. */
enum {
    STEP_NONE = 0, STEP_LINK_ETHERNET, STEP_ETHERNET, STEP_VLAN, STEP_IPV4, STEP_IPIP,
    STEP_IPV6, STEP_IP6, STEP_TCP, STEP_UDP, STEP_GRE, STEP_PPP, STEP_VXLAN,
    STEP_LINK_RADIOTAP, STEP_LINK_IEEE80211, STEP_LLC, STEP_LINK_SLL, STEP_LINK_SLL2,
    STEP_COUNT
};

/* Column order: the table's, then one IP layer's twice (outer, then inner_raw); the
 * wrapper decode/prefix.py passes the arrays in this order and checks their dtypes. */
enum {
    T_START, T_END, T_WEND, T_POS, T_NS, T_KEY, T_L2, T_ETHERTYPE, T_VLAN_N, T_VLAN1,
    T_VLAN2, T_NIP, T_TUNNELS, T_TUNNEL, T_TUNNEL_INNER, T_TUN_OFF, T_GRE_FLAGS,
    T_GRE_PROTO, T_GRE_KEY, T_VNI, T_PPP_PROTO, T_LLC_DSAP, T_LLC_SSAP, T_LLC_CTRL,
    T_SNAP_TYPE, T_IFINDEX, T_PKTTYPE, T_WAY, T_DEPTH, NTABLE
};
enum {
    L_VER, L_OFF, L_HLEN, L_TOT_LEN, L_IDENT, L_FLAGS, L_FRAG_OFF, L_IS_FRAG, L_FRAG_DATA,
    L_TTL, L_FLOW_LABEL, L_PROTO, L_CHECKSUM, L_CSUM_OK, L_SRC4, L_DST4, L_SRC6, L_DST6,
    L_L4_OFF, L_SPORT, L_DPORT, L_TCP_FLAGS, L_L4_LEN, L_ICMP_TYPE, L_ICMP_CODE, NLAYER
};
#define NCOLS (NTABLE + 2 * NLAYER)
static const Py_ssize_t TABLE_ITEM[NTABLE] = {
    8, 8, 8, 8, 1, 8, 1, 2, 1, 2, 2, 1, 1, 1, 1, 4, 2, 2, 8, 8, 2, 2, 2, 2, 4, 4, 1, 1, 1,
};
static const Py_ssize_t LAYER_ITEM[NLAYER] = {
    1, 4, 2, 4, 4, 1, 4, 1, 4, 1, 4, 1, 2, 1, 4, 4, 16, 16, 4, 2, 2, 2, 4, 2, 2,
};

typedef struct {
    uint8_t *ver, *flags, *is_frag, *ttl, *proto, *csum_ok, *src6, *dst6;
    int32_t *off, *frag_data, *l4_off;
    uint16_t *hlen, *checksum, *sport, *dport, *tcp_flags;
    uint32_t *tot_len, *ident, *frag_off, *flow_label, *src4, *dst4, *l4_len;
    int16_t *icmp_type, *icmp_code;
} Layer;

typedef struct {
    Py_buffer v[NCOLS];
    int64_t *start, *end, *wend, *pos, *key, *gre_key, *vni;
    uint8_t *ns, *l2, *vlan_n, *nip, *tunnels, *tunnel, *tunnel_inner, *depth;
    uint8_t *pkttype, *way;
    uint32_t *ifindex;
    uint16_t *ethertype, *vlan1, *vlan2, *gre_flags, *gre_proto, *ppp_proto;
    int16_t *llc_dsap, *llc_ssap, *llc_ctrl;
    int32_t *tun_off, *snap_type;
    Layer outer, inner;
    const unsigned char *b;
    const int16_t *flat; /* the registry's (namespace << 16 | key) -> binding table */
    const uint8_t *steps; /* binding number -> STEP_*, from the registry (prefix.py) */
    Py_ssize_t nsteps;
    int max_tunnels;     /* the engine's tunnel_depth */
    int max_steps;       /* headers per packet at most (prefix.py MAX_STEPS) */
} Cols;

static inline unsigned be16(const unsigned char *b, int64_t p) {
    return ((unsigned)b[p] << 8) | b[p + 1];
}
static inline uint32_t be32(const unsigned char *b, int64_t p) {
    return ((uint32_t)b[p] << 24) | ((uint32_t)b[p + 1] << 16) | ((uint32_t)b[p + 2] << 8) |
           b[p + 3];
}
static inline unsigned le16(const unsigned char *b, int64_t p) {
    return b[p] | ((unsigned)b[p + 1] << 8);
}
static inline uint32_t le32(const unsigned char *b, int64_t p) {
    return (uint32_t)le16(b, p) | ((uint32_t)le16(b, p + 2) << 16);
}
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int bound(const Cols *c, int ns, int64_t key) {
    return c->flat[((int64_t)ns << 16) | key] != 0;
}

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

static void hand_on(Cols *c, Py_ssize_t i, int64_t pos, int ns, int64_t key) {
    c->pos[i] = pos;
    c->ns[i] = (uint8_t)ns;
    c->key[i] = key;
}

static void trim(Cols *c, Py_ssize_t i, int64_t to) {
    c->end[i] = min64(c->end[i], to);
    c->wend[i] = min64(c->wend[i], to);
}

/* engine._enter_tunnel, for a packet already known to be under the tunnel depth. */
static void enter_tunnel(Cols *c, Py_ssize_t i, int kind) {
    if (c->tunnels[i] == 0) {
        c->tunnel[i] = (uint8_t)kind;
        c->tun_off[i] = (int32_t)(c->pos[i] - c->start[i]);
    }
    c->tunnel_inner[i] = (uint8_t)kind;
    c->tunnels[i]++;
}

/* ipv4.store_ip's target: `outer` for a packet's first IP layer, else `inner_raw`, whose
 * transport fields a deeper IP header resets (IPLayer.clear_l4). */
static Layer *ip_layer(Cols *c, Py_ssize_t i) {
    if (c->nip[i] == 0) return &c->outer;
    Layer *L = &c->inner;
    L->l4_off[i] = 0;
    L->sport[i] = 0;
    L->dport[i] = 0;
    L->tcp_flags[i] = 0;
    L->l4_len[i] = 0;
    L->icmp_type[i] = -1;
    L->icmp_code[i] = -1;
    return L;
}

/* PacketTable.l4_targets / cur_is_frag: the layer of the IP header just decoded. */
static Layer *l4_layer(Cols *c, Py_ssize_t i) {
    if (c->nip[i] == 0) return NULL;
    return c->nip[i] == 1 ? &c->outer : &c->inner;
}

/* ethernet.py decode (from_linktype also sets l2): Ethernet II only; a length field is
 * ethernet.length_field's. */
static int ethernet(Cols *c, Py_ssize_t i, int linktype) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i];
    if (p + 14 > c->end[i]) return 0;
    unsigned typ = be16(b, p + 12);
    if (typ < 1536) return 0;
    if (linktype) c->l2[i] = L2_ETHERNET;
    c->ethertype[i] = (uint16_t)typ;
    hand_on(c, i, p + 14, NS_ETHERTYPE, typ);
    return 1;
}

/* sll.py: a Linux cooked header, v1 (16 bytes, the protocol at 14, the packet type in the
 * low byte of the first 16 bits) or v2 (20 bytes, the protocol at 0, the interface index at
 * 4, the packet type at 10; tcpdump.org's LINKTYPE_LINUX_SLL and _SLL2). A protocol below
 * 1536 other than ETH_P_802_2 (an LLC header follows) ends the descent, as in sll.py. */
static int sll(Cols *c, Py_ssize_t i, int v2) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i];
    int64_t hlen = v2 ? 20 : 16;
    if (p + hlen > c->end[i]) return 0; /* l2.truncated is sll.py's */
    unsigned pkttype = v2 ? b[p + 10] : b[p + 1];
    c->l2[i] = v2 ? L2_SLL2 : L2_SLL;
    if (v2) c->ifindex[i] = be32(b, p + 4);
    c->pkttype[i] = (uint8_t)pkttype;
    c->way[i] = pkttype == 4 ? WAY_OUT : WAY_IN; /* PACKET_OUTGOING (linux/if_packet.h) */
    unsigned proto = be16(b, p + (v2 ? 0 : 14));
    c->ethertype[i] = (uint16_t)proto;
    if (proto >= 1536)
        hand_on(c, i, p + hlen, NS_ETHERTYPE, proto);
    else if (proto == 0x0004) /* ETH_P_802_2 */
        hand_on(c, i, p + hlen, NS_FRAME, FRAME_LLC);
    else
        c->ns[i] = NS_DONE;
    return 1;
}

/* vlan.py: 802.1Q, 802.1ad, legacy QinQ. */
static int vlan(Cols *c, Py_ssize_t i) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i];
    unsigned n = c->vlan_n[i];
    if (p + 4 > c->end[i] || n >= MAX_TAGS) return 0;
    unsigned inner = be16(b, p + 2);
    if (inner < 1536) return 0;
    unsigned vid = be16(b, p) & 0x0FFF;
    if (n == 0) c->vlan1[i] = (uint16_t)vid;
    if (n == 1) c->vlan2[i] = (uint16_t)vid;
    c->vlan_n[i] = (uint8_t)(n + 1);
    c->ethertype[i] = (uint16_t)inner;
    hand_on(c, i, p + 4, NS_ETHERTYPE, inner);
    return 1;
}

/* ipv4.py, for the outer header or inside a tunnel of `kind` (IPIP entered first). */
static int ipv4(Cols *c, Py_ssize_t i, int kind) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i], e = c->end[i], we = c->wend[i];
    if (kind != TUN_NONE && c->tunnels[i] >= c->max_tunnels) return 0;
    if (p + 20 > e) return 0;
    unsigned vihl = b[p];
    int hlen = (int)(vihl & 0x0F) * 4;
    if ((vihl >> 4) != 4 || hlen < 20 || p + hlen > e) return 0;
    int64_t tot = be16(b, p + 2);
    /* Total length 0 (BIG TCP) is the NumPy decoder's (ipv4.py). */
    if (tot == 0 || tot < hlen || p + tot > we) return 0;
    unsigned ff = be16(b, p + 6);
    unsigned flags = (ff >> 13) & 3;     /* DF 0x2, MF 0x1 (RFC 791 section 3.1) */
    uint32_t frag_off = (ff & 0x1FFF) * 8;
    int64_t s = c->start[i];
    unsigned proto = b[p + 9];
    if (kind != TUN_NONE) enter_tunnel(c, i, kind);
    Layer *L = ip_layer(c, i);
    L->csum_ok[i] = (uint8_t)ipv4_csum_ok(b, p, hlen);
    L->ver[i] = 4;
    L->off[i] = (int32_t)(p - s);
    L->hlen[i] = (uint16_t)hlen;
    L->tot_len[i] = (uint32_t)tot;
    L->ident[i] = be16(b, p + 4);
    L->flags[i] = (uint8_t)flags;
    L->frag_off[i] = frag_off;
    L->is_frag[i] = (uint8_t)((flags & 1) != 0 || frag_off != 0);
    L->frag_data[i] = (int32_t)(p + hlen - s);
    L->ttl[i] = b[p + 8];
    L->proto[i] = (uint8_t)proto;
    L->checksum[i] = (uint16_t)be16(b, p + 10);
    L->src4[i] = be32(b, p + 12);
    L->dst4[i] = be32(b, p + 16);
    c->nip[i]++;
    trim(c, i, p + tot);
    /* Only the first fragment carries the transport header (RFC 791 section 2.3). */
    if (frag_off != 0)
        c->ns[i] = NS_DONE;
    else
        hand_on(c, i, p + hlen, NS_IPPROTO, proto);
    return 1;
}

/* ipv6.py without extension headers, outer or inside a tunnel of `kind`. */
static int ipv6(Cols *c, Py_ssize_t i, int kind) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i], e = c->end[i], we = c->wend[i];
    if (kind != TUN_NONE && c->tunnels[i] >= c->max_tunnels) return 0;
    if (p + 40 > e) return 0;
    uint32_t vtf = be32(b, p);
    int64_t plen = be16(b, p + 4);
    unsigned nh = b[p + 6];
    /* Jumbograms (payload length 0) and extension headers are ipv6.py's. */
    if ((vtf >> 28) != 6 || plen == 0 || p + 40 + plen > we || ipv6_ext(nh)) return 0;
    if (kind != TUN_NONE) enter_tunnel(c, i, kind);
    Layer *L = ip_layer(c, i);
    L->ver[i] = 6;
    L->off[i] = (int32_t)(p - c->start[i]);
    L->tot_len[i] = (uint32_t)(plen + 40);
    L->ttl[i] = b[p + 7];
    L->flow_label[i] = vtf & 0xFFFFF;
    memcpy(L->src6 + 16 * i, b + p + 8, 16);
    memcpy(L->dst6 + 16 * i, b + p + 24, 16);
    L->ident[i] = 0;
    L->flags[i] = 0;
    L->frag_off[i] = 0;
    L->is_frag[i] = 0;
    L->proto[i] = (uint8_t)nh;
    L->hlen[i] = 40;
    c->nip[i]++;
    trim(c, i, p + 40 + plen);
    hand_on(c, i, p + 40, NS_IPPROTO, nh);
    return 1;
}

/* tcp.py. A header cut by a fragment boundary is no anomaly (PacketTable.short_l4). */
static int tcp(Cols *c, Py_ssize_t i) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i], e = c->end[i];
    Layer *L = l4_layer(c, i);
    if (L == NULL) return 0;
    int frag = L->is_frag[i];
    if (p + 20 > e) {
        if (!frag) return 0;
        c->ns[i] = NS_DONE;
        return 1;
    }
    unsigned of = be16(b, p + 12);
    int64_t doff = (int64_t)(of >> 12) * 4;
    if (doff < 20 || (p + doff > e && !frag)) return 0;
    L->l4_off[i] = (int32_t)(p - c->start[i]);
    L->sport[i] = (uint16_t)be16(b, p);
    L->dport[i] = (uint16_t)be16(b, p + 2);
    L->tcp_flags[i] = (uint16_t)(of & 0x0FFF);
    c->ns[i] = NS_DONE;
    return 1;
}

/* udp.py: a fragment's UDP header is recorded, its length not checked, its payload not
 * entered. */
static int udp(Cols *c, Py_ssize_t i) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i], e = c->end[i];
    Layer *L = l4_layer(c, i);
    if (L == NULL) return 0;
    int frag = L->is_frag[i];
    if (p + 8 > e) {
        if (!frag) return 0;
        c->ns[i] = NS_DONE;
        return 1;
    }
    unsigned ulen = be16(b, p + 4);
    if (!frag && ((ulen < 8 && ulen != 0) || p + (int64_t)ulen > c->wend[i])) return 0;
    unsigned dport = be16(b, p + 2);
    L->l4_off[i] = (int32_t)(p - c->start[i]);
    L->sport[i] = (uint16_t)be16(b, p);
    L->dport[i] = (uint16_t)dport;
    L->l4_len[i] = ulen;
    if (frag) {
        c->ns[i] = NS_DONE;
        return 1;
    }
    if (ulen != 0) trim(c, i, p + ulen);
    /* udp.py payload_port: the lower port where bound or a system port (RFC 6335 section
     * 6), else the higher one. */
    unsigned sport = L->sport[i];
    unsigned lo = sport < dport ? sport : dport, hi = sport < dport ? dport : sport;
    unsigned key = (bound(c, NS_UDPPORT, lo) || (lo > 0 && lo < 1024)) ? lo : hi;
    hand_on(c, i, p + 8, NS_UDPPORT, key);
    return 1;
}

/* gre.py: version 0 (RFC 2784, key and sequence of RFC 2890) and version 1 (PPTP, RFC 2637
 * section 4.1), with engine._enter_tunnel's bookkeeping. */
static int gre(Cols *c, Py_ssize_t i) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i];
    if (c->tunnels[i] >= c->max_tunnels || p + 4 > c->end[i]) return 0;
    unsigned fv = be16(b, p), proto = be16(b, p + 2), ver = fv & 0x0007;
    if (ver > 1 || (fv & 0x4000) != 0) return 0; /* bad version; routing (RFC 2784 2.1) */
    int csum = (fv & 0x8000) != 0, key = (fv & 0x2000) != 0, seq = (fv & 0x1000) != 0;
    int ack = (fv & 0x0080) != 0;
    int64_t hlen = 4 + 4 * (csum + key + seq) + (ver == 1 ? 4 * ack : 0);
    if (p + hlen > c->end[i]) return 0;
    enter_tunnel(c, i, TUN_GRE);
    c->gre_flags[i] = (uint16_t)fv;
    c->gre_proto[i] = (uint16_t)proto;
    if (key) {
        int64_t at = p + 4 + 4 * csum;
        c->gre_key[i] = ver == 0 ? (int64_t)be32(b, at) : (int64_t)be16(b, at + 2);
    }
    if (ver == 1) {
        c->tunnel_inner[i] = TUN_PPTP;
        if (c->tunnels[i] == 1) c->tunnel[i] = TUN_PPTP;
    }
    hand_on(c, i, p + hlen, NS_TUNNEL_PROTO, proto);
    if (ver == 1 && key) {
        /* gre.py _payload_length: 0 is an acknowledgment alone (RFC 2637 section 4.1). */
        int64_t plen = be16(b, p + 4 + 4 * csum);
        if (plen == 0)
            c->ns[i] = NS_DONE;
        else if (p + hlen + plen <= c->wend[i])
            trim(c, i, p + hlen + plen);
    }
    return 1;
}

/* ppp.py: optional address/control 0xff03, then a 1- or 2-byte protocol (RFC 1661 6.5). */
static int ppp(Cols *c, Py_ssize_t i) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i], e = c->end[i];
    if (p + 2 > e) return 0; /* ppp.py reads the control byte even of a 1-byte payload */
    if (b[p] == 0xFF && b[p + 1] == 0x03) p += 2;
    if (p + 1 > e) return 0;
    unsigned first = b[p];
    int64_t plen = (first & 1) ? 1 : 2;
    if (p + plen > e) return 0;
    unsigned proto = plen == 1 ? first : be16(b, p);
    c->ppp_proto[i] = (uint16_t)proto;
    hand_on(c, i, p + plen, NS_PPP, proto);
    return 1;
}

/* vxlan.py (RFC 7348), then an Ethernet frame. A header without the I flag (vxlan.py
 * plausible: not VXLAN) is left to the engine, which ends it there. */
static int vxlan(Cols *c, Py_ssize_t i) {
    int64_t p = c->pos[i];
    if (c->tunnels[i] >= c->max_tunnels || p + 8 > c->end[i]) return 0;
    if ((c->b[p] & 0x08) == 0) return 0;
    enter_tunnel(c, i, TUN_VXLAN);
    c->vni[i] = (int64_t)(be32(c->b, p + 4) >> 8);
    hand_on(c, i, p + 8, NS_FRAME, FRAME_ETHERNET);
    return 1;
}

/* ieee80211.py frame(): the 802.11 frame at q (data ends at e, the wire at we) of a packet
 * whose link header is all written but for this; `pad`: radiotap F_DATAPAD. On success,
 * what to write: *next (0: the descent ends here; FRAME_LLC at *at), *trim_to (-1: none).
 * 0 where the decoder would flag an anomaly (nothing is written then). */
static int wlan_frame(const unsigned char *b, int64_t q, int64_t e, int64_t we, int pad,
                      int *next, int64_t *at, int64_t *trim_to) {
    *next = 0;
    *trim_to = -1;
    if (q + 10 > e) return 0; /* MIN_FRAME */
    unsigned fc0 = b[q], fc1 = b[q + 1], subtype = fc0 >> 4;
    /* Data (type 2, version 0), not a "no data" subtype, not protected: else no packet. */
    if ((fc0 & 3) != 0 || ((fc0 >> 2) & 3) != 2 || (subtype & 0x4) || (fc1 & 0x40)) return 1;
    int qos = (subtype & 0x8) != 0, four = (fc1 & 3) == 3;
    int64_t qos_at = 24 + 6 * four;
    int64_t hlen = qos_at + 2 * qos + 4 * (qos && (fc1 & 0x80));
    if (pad) hlen = (hlen + 3) & ~3;
    if (q + hlen > e) return 0;
    unsigned qos0 = qos ? b[q + qos_at] : 0, qos1 = qos ? b[q + qos_at + 1] : 0;
    int whole = !(fc1 & 0x04) && (le16(b, q + 22) & 0xF) == 0; /* not an 802.11 fragment */
    whole = whole && (!four || !(qos1 & 0x01));                  /* no mesh control */
    int64_t body = q + hlen;
    if (!whole || body >= e) return 1;
    if (!(qos0 & 0x80)) { /* not an A-MSDU */
        *next = FRAME_LLC;
        *at = body;
        return 1;
    }
    /* The A-MSDU's first subframe: DA, SA, a big-endian length, then LLC. */
    if (body + 14 > e) return 0;
    int64_t send = body + 14 + be16(b, body + 12);
    if (send > we) return 0;
    *next = FRAME_LLC;
    *at = body + 14;
    *trim_to = send;
    return 1;
}

static void wlan_write(Cols *c, Py_ssize_t i, int next, int64_t at, int64_t trim_to) {
    c->l2[i] = L2_IEEE80211;
    if (trim_to >= 0) trim(c, i, trim_to);
    if (next)
        hand_on(c, i, at, NS_FRAME, next);
    else
        c->ns[i] = NS_DONE;
}

/* ieee80211.py from_linktype (LINKTYPE_IEEE802_11). */
static int ieee80211(Cols *c, Py_ssize_t i) {
    int64_t at = 0, trim_to;
    int next;
    if (!wlan_frame(c->b, c->pos[i], c->end[i], c->wend[i], 0, &next, &at, &trim_to)) return 0;
    wlan_write(c, i, next, at, trim_to);
    return 1;
}

/* radiotap.py from_linktype, then the 802.11 frame behind the header (one decoder call). */
static int radiotap(Cols *c, Py_ssize_t i) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i], e = c->end[i], we = c->wend[i];
    if (p + 8 > e) return 0;
    int64_t hend = p + le16(b, p + 2);
    if (b[p] != 0 || hend < p + 8 || hend > we || hend > e) return 0;
    uint32_t present = le32(b, p + 4), word = present;
    int64_t at = p + 8;
    /* radiotap.py _flags: the present words (MAX_WORDS of them at most, inside the header),
     * then the Flags byte after TSFT's 8 aligned bytes. */
    for (int k = 0; word & (1u << 31); k++) {
        if (k == 64 || at + 4 > hend) return 0;
        word = le32(b, at);
        at += 4;
    }
    unsigned flags = 0;
    if (present & 2) {
        int64_t field = (present & 1) ? p + ((at - p + 7) & ~7) + 8 : at;
        if (field >= hend) return 0;
        flags = b[field];
    }
    int fcs = (flags & 0x10) != 0;
    if (fcs && hend + 4 > we) return 0;
    if (fcs) { /* the FCS is not payload */
        e = min64(e, we - 4);
        we -= 4;
    }
    int next = 0;
    int64_t next_at = 0, trim_to = -1;
    /* A damaged frame (F_BADFCS) or none (0-length-PSDU): counted, not decoded. */
    int no_frame = (flags & 0x40) || (present & (1u << 26));
    if (!no_frame &&
        !wlan_frame(b, hend, e, we, (flags & 0x20) != 0, &next, &next_at, &trim_to))
        return 0;
    if (fcs) trim(c, i, we);
    if (!no_frame) c->pos[i] = hend; /* radiotap.py leaves the cursor of a stop */
    wlan_write(c, i, next, next_at, trim_to);
    return 1;
}

/* llc.py: the LLC header and an RFC 1042 SNAP header naming an EtherType; spanning tree
 * BPDUs and RFC 2684 bridged frames are llc.py's. */
static int llc(Cols *c, Py_ssize_t i) {
    const unsigned char *b = c->b;
    int64_t p = c->pos[i], e = c->end[i];
    if (p + 3 > e) return 0;
    unsigned dsap = b[p], ssap = b[p + 1], ctrl = b[p + 2];
    int64_t at = p + ((ctrl & 3) == 3 ? 3 : 4); /* U format: 1-byte control */
    int snap = dsap == 0xAA && ssap == 0xAA;
    if (dsap == 0x42 && ssap == 0x42) return 0;
    unsigned oui = 0, typ = 0;
    if (snap) {
        if (at + 5 > e) return 0;
        oui = be32(b, at) >> 8;
        typ = be16(b, at + 3);
        if (oui == 0x0080C2 && (typ == 1 || typ == 7)) return 0;
        c->snap_type[i] = (int32_t)typ;
    }
    c->llc_dsap[i] = (int16_t)dsap;
    c->llc_ssap[i] = (int16_t)ssap;
    c->llc_ctrl[i] = (int16_t)ctrl;
    if (snap && oui == 0) {
        c->ethertype[i] = (uint16_t)typ;
        hand_on(c, i, at + 5, NS_ETHERTYPE, typ);
    } else {
        c->ns[i] = NS_DONE;
    }
    return 1;
}

/* engine._unbound: no decoder for (ns, key) ends the descent. Only where that sets no
 * anomaly and no layer: an unknown link type (l2 unknown) or outermost EtherType (flagged)
 * is the engine's. */
static int unbound(Cols *c, Py_ssize_t i, int ns) {
    if (ns == NS_LINKTYPE || ns == NS_FRAME) return 0;
    if (ns == NS_ETHERTYPE && c->tunnels[i] == 0) return 0;
    c->ns[i] = NS_DONE;
    return 1;
}

/* One decoder call of the engine's round for packet i: the registry's binding for (ns, key)
 * and that binding's compiled twin; 0 where the NumPy decoders take over (nothing
 * written). */
static int step(Cols *c, Py_ssize_t i) {
    int ns = c->ns[i];
    int64_t key = c->key[i];
    if (ns <= NS_DONE || ns >= NS_COUNT || key < 0 || key > 0xFFFF) return 0;
    int b = c->flat[((int64_t)ns << 16) | key];
    if (b == 0) return unbound(c, i, ns);
    switch (b < c->nsteps ? c->steps[b] : STEP_NONE) {
    case STEP_LINK_ETHERNET: return ethernet(c, i, 1);
    case STEP_ETHERNET: return ethernet(c, i, 0);
    case STEP_VLAN: return vlan(c, i);
    case STEP_IPV4: return ipv4(c, i, TUN_NONE);
    case STEP_IPIP: return ipv4(c, i, TUN_IPIP);
    case STEP_IPV6: return ipv6(c, i, TUN_NONE);
    case STEP_IP6: return ipv6(c, i, TUN_IP6);
    case STEP_TCP: return tcp(c, i);
    case STEP_UDP: return udp(c, i);
    case STEP_GRE: return gre(c, i);
    case STEP_PPP: return ppp(c, i);
    case STEP_VXLAN: return vxlan(c, i);
    case STEP_LINK_RADIOTAP: return radiotap(c, i);
    case STEP_LINK_IEEE80211: return ieee80211(c, i);
    case STEP_LLC: return llc(c, i);
    case STEP_LINK_SLL: return sll(c, i, 0);
    case STEP_LINK_SLL2: return sll(c, i, 1);
    default: return 0;
    }
}

static void packet(Cols *c, Py_ssize_t blen, Py_ssize_t i) {
    if (c->pos[i] < 0 || c->end[i] > blen) return;
    while (c->ns[i] != NS_DONE && c->depth[i] < c->max_steps && step(c, i)) c->depth[i]++;
}

static void layer_cols(Layer *L, Py_buffer *v) {
#define COL(name, IDX, T) L->name = (T *)v[IDX].buf
    COL(ver, L_VER, uint8_t); COL(off, L_OFF, int32_t); COL(hlen, L_HLEN, uint16_t);
    COL(tot_len, L_TOT_LEN, uint32_t); COL(ident, L_IDENT, uint32_t);
    COL(flags, L_FLAGS, uint8_t); COL(frag_off, L_FRAG_OFF, uint32_t);
    COL(is_frag, L_IS_FRAG, uint8_t); COL(frag_data, L_FRAG_DATA, int32_t);
    COL(ttl, L_TTL, uint8_t); COL(flow_label, L_FLOW_LABEL, uint32_t);
    COL(proto, L_PROTO, uint8_t); COL(checksum, L_CHECKSUM, uint16_t);
    COL(csum_ok, L_CSUM_OK, uint8_t); COL(src4, L_SRC4, uint32_t); COL(dst4, L_DST4, uint32_t);
    COL(src6, L_SRC6, uint8_t); COL(dst6, L_DST6, uint8_t); COL(l4_off, L_L4_OFF, int32_t);
    COL(sport, L_SPORT, uint16_t); COL(dport, L_DPORT, uint16_t);
    COL(tcp_flags, L_TCP_FLAGS, uint16_t); COL(l4_len, L_L4_LEN, uint32_t);
    COL(icmp_type, L_ICMP_TYPE, int16_t); COL(icmp_code, L_ICMP_CODE, int16_t);
#undef COL
}

static Py_ssize_t item_size(int k) {
    return k < NTABLE ? TABLE_ITEM[k] : LAYER_ITEM[(k - NTABLE) % NLAYER];
}

/* prefix(buf, columns, flat, steps, max_tunnels, max_steps) -> packets finished
 * (ns == DONE). */
static PyObject *prefix(PyObject *self, PyObject *args) {
    PyObject *bufobj, *seq, *flatobj;
    Py_buffer in, fl, st;
    Cols c;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOy*ii", &bufobj, &seq, &flatobj, &st, &c.max_tunnels,
                          &c.max_steps))
        return NULL;
    /* Copied, so the only buffer held past this point is released here: binding numbers
     * are int16 (the flat table's type), so at most 1 << 15 of them. */
    uint8_t steps[1 << 15];
    int valid = st.len <= (Py_ssize_t)sizeof steps;
    for (Py_ssize_t k = 0; valid && k < st.len; k++) {
        steps[k] = ((const uint8_t *)st.buf)[k];
        valid = steps[k] < STEP_COUNT;
    }
    c.steps = steps;
    c.nsteps = st.len;
    PyBuffer_Release(&st);
    if (!valid) {
        PyErr_SetString(PyExc_ValueError, "steps: one STEP_* code per binding, 1 << 15 at most");
        return NULL;
    }
    if (c.max_steps < 0 || c.max_steps > 255) {
        PyErr_SetString(PyExc_ValueError, "max_steps: 0 to 255 (depth is a uint8 column)");
        return NULL;
    }
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
    int ok = fl.len >= (Py_ssize_t)(NS_COUNT << 16) * 2;
    for (; ok && got < NCOLS; got++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(seq, got), &c.v[got],
                               PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
            ok = -1;
            break;
        }
        if (n < 0) n = c.v[got].len / item_size(got);
        if (c.v[got].len != n * item_size(got)) {
            got++;
            ok = 0;
            break;
        }
    }
    if (ok != 1) {
        for (int k = 0; k < got; k++) PyBuffer_Release(&c.v[k]);
        PyBuffer_Release(&in);
        PyBuffer_Release(&fl);
        if (ok == 0) PyErr_SetString(PyExc_ValueError, "column or table sizes do not match");
        return NULL;
    }
#define COL(name, IDX, T) c.name = (T *)c.v[IDX].buf
    COL(start, T_START, int64_t); COL(end, T_END, int64_t); COL(wend, T_WEND, int64_t);
    COL(pos, T_POS, int64_t); COL(ns, T_NS, uint8_t); COL(key, T_KEY, int64_t);
    COL(l2, T_L2, uint8_t); COL(ethertype, T_ETHERTYPE, uint16_t);
    COL(vlan_n, T_VLAN_N, uint8_t); COL(vlan1, T_VLAN1, uint16_t);
    COL(vlan2, T_VLAN2, uint16_t); COL(nip, T_NIP, uint8_t); COL(tunnels, T_TUNNELS, uint8_t);
    COL(tunnel, T_TUNNEL, uint8_t); COL(tunnel_inner, T_TUNNEL_INNER, uint8_t);
    COL(tun_off, T_TUN_OFF, int32_t); COL(gre_flags, T_GRE_FLAGS, uint16_t);
    COL(gre_proto, T_GRE_PROTO, uint16_t); COL(gre_key, T_GRE_KEY, int64_t);
    COL(vni, T_VNI, int64_t); COL(ppp_proto, T_PPP_PROTO, uint16_t);
    COL(llc_dsap, T_LLC_DSAP, int16_t); COL(llc_ssap, T_LLC_SSAP, int16_t);
    COL(llc_ctrl, T_LLC_CTRL, int16_t); COL(snap_type, T_SNAP_TYPE, int32_t);
    COL(ifindex, T_IFINDEX, uint32_t); COL(pkttype, T_PKTTYPE, uint8_t); COL(way, T_WAY, uint8_t);
    COL(depth, T_DEPTH, uint8_t);
#undef COL
    layer_cols(&c.outer, c.v + NTABLE);
    layer_cols(&c.inner, c.v + NTABLE + NLAYER);
    c.b = (const unsigned char *)in.buf;
    c.flat = (const int16_t *)fl.buf;
    Py_ssize_t done = 0;
    /* Packets start ~500 bytes apart at irregular strides the hardware prefetcher does
     * not follow, and a batch (4 MiB) is larger than L2: each packet's first line would be
     * a miss. Their offsets are known, so the lines are asked for a few packets ahead. */
    enum { AHEAD = 8 };
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + AHEAD < n) {
            int64_t q = c.pos[i + AHEAD];
            if (q >= 0 && q + 64 < in.len) {
                __builtin_prefetch(c.b + q);
                __builtin_prefetch(c.b + q + 64);
            }
        }
        packet(&c, in.len, i);
        done += c.ns[i] == NS_DONE;
    }
    for (int k = 0; k < NCOLS; k++) PyBuffer_Release(&c.v[k]);
    PyBuffer_Release(&in);
    PyBuffer_Release(&fl);
    return PyLong_FromSsize_t(done);
}

static PyMethodDef methods[] = {
    {"prefix", prefix, METH_VARARGS,
     "Decode Ethernet/VLAN/IP/TCP|UDP and the common tunnels of each packet."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_prefix", "The common packet shapes, decoded in one pass.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__prefix(void) {
    static const struct { const char *name; int value; } codes[] = {
        {"STEP_LINK_ETHERNET", STEP_LINK_ETHERNET}, {"STEP_ETHERNET", STEP_ETHERNET},
        {"STEP_VLAN", STEP_VLAN}, {"STEP_IPV4", STEP_IPV4}, {"STEP_IPIP", STEP_IPIP},
        {"STEP_IPV6", STEP_IPV6}, {"STEP_IP6", STEP_IP6}, {"STEP_TCP", STEP_TCP},
        {"STEP_UDP", STEP_UDP}, {"STEP_GRE", STEP_GRE}, {"STEP_PPP", STEP_PPP},
        {"STEP_VXLAN", STEP_VXLAN}, {"STEP_LINK_RADIOTAP", STEP_LINK_RADIOTAP},
        {"STEP_LINK_IEEE80211", STEP_LINK_IEEE80211}, {"STEP_LLC", STEP_LLC},
        {"STEP_LINK_SLL", STEP_LINK_SLL}, {"STEP_LINK_SLL2", STEP_LINK_SLL2},
    };
    PyObject *m = PyModule_Create(&moddef);
    if (m == NULL) return NULL;
    for (size_t k = 0; k < sizeof codes / sizeof codes[0]; k++) {
        if (PyModule_AddIntConstant(m, codes[k].name, codes[k].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
