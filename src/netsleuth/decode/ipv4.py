"""IPv4 (RFC 791), options skipped by IHL; also the inner header of IPIP (IP protocol 4)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.arrays import distinct
from netsleuth.decode import headers
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

MIN_HLEN = 20


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, MIN_HLEN, Anomaly.IPV4_TRUNCATED)
    p = t.pos[idx]
    h = t.v.header(p, headers.IPV4)
    vihl = h["ver_ihl"].astype(np.int64)
    hlen = (vihl & 0x0F) * 4
    # Version, IHL and "header fits" in one pass; the rare failures are sorted out after.
    ok = ((vihl >> 4) == 4) & (hlen >= MIN_HLEN) & (p + hlen <= t.end[idx])
    if not ok.all():
        bad, bv, bh = idx[~ok], vihl[~ok], hlen[~ok]
        badver = (bv >> 4) != 4
        t.flag(bad[badver], Anomaly.IP_BAD_VERSION)
        badhl = ~badver & (bh < MIN_HLEN)
        t.flag(bad[badhl], Anomaly.IPV4_BAD_HEADER_LENGTH)
        t.flag(bad[~badver & ~badhl], Anomaly.IPV4_TRUNCATED)
        idx, p, hlen, h = idx[ok], p[ok], hlen[ok], h[ok]

    tot = h["total_length"].astype(np.int64)
    wend = t.wend[idx]
    # Total length 0 is what Linux BIG TCP writes for IPv4 packets over 64 KiB (Linux 6.3,
    # "net: add support for BIG TCP IPv4"): such a packet is as long as the frame says.
    # Not on the wire (an ERF capture, RecordBatch.wire): BIG TCP is a packet inside one
    # host, cut by its NIC before it leaves, and a receiver drops a length of 0
    # (ip_rcv_core, net/ipv4/ip_input.c).
    tso = (tot == 0) & (not t.batch.wire)
    if tso.any():
        tot = np.where(tso, wend - p, tot)
    ff = h["flags_fragment"]
    flags = ((ff >> 13) & 3).astype(np.uint8)  # DF 0x2, MF 0x1 (RFC 791 section 3.1)
    frag_off = (ff & 0x1FFF).astype(np.uint32) * 8
    proto = h["protocol"]
    store_ip(
        t,
        idx,
        {
            "csum_ok": _checksum_ok(t, h, p, hlen),
            "ver": 4,
            "off": p - t.start[idx],
            "hlen": hlen,
            "tot_len": tot,
            "ident": h["identification"],
            "flags": flags,
            "frag_off": frag_off,
            "is_frag": ((flags & 1) != 0) | (frag_off != 0),
            "frag_data": p + hlen - t.start[idx],
            "ttl": h["ttl"],
            "proto": proto,
            "checksum": h["checksum"],
            "src4": h["src"],
            "dst4": h["dst"],
        },
    )
    end = p + tot
    badtot = (tot < hlen) | (end > wend)
    if badtot.any():
        t.flag(idx[badtot], Anomaly.IPV4_BAD_TOTAL_LENGTH)
        ok = ~badtot
        idx, p, hlen, end = idx[ok], p[ok], hlen[ok], end[ok]
        frag_off, proto = frag_off[ok], proto[ok]
    t.trim(idx, end)
    # Only the first fragment carries the transport header (RFC 791 section 2.3).
    later = frag_off != 0
    if later.any():
        t.stop(idx[later])
        first = ~later
        idx, p, hlen, proto = idx[first], p[first], hlen[first], proto[first]
    t.hand_on(idx, p + hlen, NS.IPPROTO, proto.astype(np.int64))


def _checksum_ok(
    t: PacketTable, h: NDArray[np.void], p: NDArray[np.int64], hlen: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """The header checksum verifies: the one's complement sum of the header is 0xFFFF.

    Summed as native 32-bit words into 64 bits and folded (RFC 1071 section 2 (B) and (C):
    byte order and word width do not change the folded sum; 0xFFFF reads the same both
    ways). Headers with options (rare) are re-read at their full length.
    """
    words = h.view(np.uint8).reshape(-1, MIN_HLEN).view("<u4")
    acc = words[:, 0].astype(np.uint64)
    for k in range(1, MIN_HLEN // 4):
        acc += words[:, k]
    opts = np.flatnonzero(hlen > MIN_HLEN)
    for size in distinct(hlen[opts]) if opts.shape[0] else ():
        sel = opts[hlen[opts] == size]
        rows = t.v.header(p[sel], np.dtype((np.void, int(size))))
        more = rows.view(np.uint8).reshape(-1, int(size))[:, MIN_HLEN:].view("<u4")
        for k in range(more.shape[1]):
            acc[sel] += more[:, k]
    acc = (acc & 0xFFFFFFFF) + (acc >> 32)
    for _ in range(3):
        acc = (acc & 0xFFFF) + (acc >> 16)
    ok: NDArray[np.bool_] = acc == 0xFFFF
    return ok


def store_ip(t: PacketTable, idx: NDArray[np.int64], cols: dict[str, object]) -> None:
    """Write an IP layer's fields: to `outer` for a packet's first IP, else to `inner`."""
    targets = t.ip_targets(idx)
    for layer, sub, _ in targets:
        if layer is t.inner_raw:
            layer.clear_l4(sub)  # a deeper IP header replaces the inner layer whole
    t.put(targets, cols)
    t.nip[idx] += 1


register(NS.ETHERTYPE, 0x0800, "ipv4", decode)
register(NS.PPP, 0x0021, "ipv4", decode)  # RFC 1332
register(NS.TUNNEL_PROTO, 0x0800, "ipv4", decode)
register(NS.IPPROTO, 4, "ipip", decode, tunnel=Tunnel.IPIP)  # RFC 2003; 4in6 (RFC 2473)
