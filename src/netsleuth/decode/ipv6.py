"""IPv6 (RFC 8200) with its extension-header chain; also 6in4 / 6in6 (IP protocol 41)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import headers
from netsleuth.decode.ipv4 import store_ip
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

HLEN = 40
HOPOPT, ROUTING, FRAGMENT, AH, DSTOPTS, MOBILITY, HIP, SHIM6 = 0, 43, 44, 51, 60, 135, 139, 140
# Extension headers whose length byte counts 8-octet units beyond the first 8 (RFC 8200
# section 4, RFC 6275, RFC 7401, RFC 5533). AH counts 4-octet units minus 2 (RFC 4302).
EXT_8 = np.array([HOPOPT, ROUTING, DSTOPTS, MOBILITY, HIP, SHIM6])
# RFC 8200 sets no limit, but no sane packet carries more; RFC 7112 asks that the whole
# chain fit in the first fragment. Linux's flow dissector stops far sooner.
MAX_EXT = 8


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, HLEN, Anomaly.IPV6_TRUNCATED)
    p = t.pos[idx]
    h = t.v.header(p, headers.IPV6)
    badver = (h["ver_tc_flow"] >> 28) != 6
    if badver.any():
        t.flag(idx[badver], Anomaly.IP_BAD_VERSION)
        idx, p, h = idx[~badver], p[~badver], h[~badver]
    plen = h["payload_length"].astype(np.int64)
    # Payload length 0 is a jumbogram (RFC 2675) or a BIG TCP / GSO packet: the frame says.
    # Not on the wire (an ERF capture, RecordBatch.wire): BIG TCP never leaves its host and
    # no jumbogram fits an Ethernet frame (its Jumbo Payload length is over 65535: RFC 2675
    # section 2), so the payload is empty, as a receiver takes it (ip6_rcv_core trims the
    # packet to its header, net/ipv6/ip6_input.c) and tshark does (then finding the
    # frame's FCS in what follows: PacketTable.settle_fcs).
    if not t.batch.wire:
        plen = np.where(plen == 0, t.wend[idx] - p - HLEN, plen)
    bad = p + HLEN + plen > t.wend[idx]
    nh = h["next_header"].astype(np.int64)
    cols: dict[str, object] = {
        "ver": 6,
        "off": p - t.start[idx],
        "tot_len": plen + HLEN,
        "ttl": h["hop_limit"],
        "flow_label": h["ver_tc_flow"] & 0xFFFFF,
        "src6": h["src"],
        "dst6": h["dst"],
        "ident": 0,
        "flags": 0,
        "frag_off": 0,
        "is_frag": False,
    }
    store_ip(t, idx, cols)
    t.flag(idx[bad], Anomaly.IPV6_BAD_PAYLOAD_LENGTH)
    ok = ~bad
    idx, p, nh, plen = idx[ok], p[ok], nh[ok], plen[ok]
    t.trim(idx, p + HLEN + plen)
    t.pos[idx] = p + HLEN
    _chain(t, idx, nh)
    t.put(t.current(idx), {"hlen": t.pos[idx] - p})


def _chain(t: PacketTable, idx: NDArray[np.int64], nh: NDArray[np.int64]) -> None:
    """Walk the extension headers of all packets at once, one header per step."""
    walking, cur = idx, nh
    for step in range(MAX_EXT + 1):
        is_ext = np.isin(cur, EXT_8) | (cur == AH) | (cur == FRAGMENT)
        _finish(t, walking[~is_ext], cur[~is_ext])
        walking, cur = walking[is_ext], cur[is_ext]
        if walking.shape[0] == 0 or step == MAX_EXT:
            break
        ok = t.fits(walking, 8)  # every extension header is at least 8 octets
        t.flag(walking[~ok], Anomaly.IPV6_EXT_TRUNCATED)
        walking, cur = walking[ok], cur[ok]
        p = t.pos[walking]
        nxt = t.v.u8[p].astype(np.int64)
        hl = t.v.u8[p + 1].astype(np.int64)
        length = np.where(cur == AH, (hl + 2) * 4, np.where(cur == FRAGMENT, 8, (hl + 1) * 8))
        ok = t.fits(walking, length)
        t.flag(walking[~ok], Anomaly.IPV6_EXT_TRUNCATED)
        walking, cur, p, nxt, length = walking[ok], cur[ok], p[ok], nxt[ok], length[ok]
        t.pos[walking] = p + length
        frag = cur == FRAGMENT
        if frag.any():
            later = _fragment(t, walking[frag], p[frag], nxt[frag])
            keep = np.ones(walking.shape[0], dtype=np.bool_)
            keep[np.flatnonzero(frag)[later]] = False
            walking, nxt = walking[keep], nxt[keep]
        cur = nxt
    t.flag(walking, Anomaly.IPV6_EXT_CHAIN_TOO_LONG)


def _fragment(
    t: PacketTable, idx: NDArray[np.int64], p: NDArray[np.int64], nxt: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Record the fragment header (RFC 8200 section 4.5); return which are non-first."""
    word = t.v.be16[p + 2]
    frag_off = (word & 0xFFF8).astype(np.uint32)  # offset in 8-octet units, shifted by 3
    mf = (word & 1).astype(np.uint8)
    ident = t.v.be32[p + 4]
    t.put(
        t.current(idx),
        {
            "is_frag": True,
            "frag_off": frag_off,
            "flags": mf,
            "ident": ident,
            "frag_data": p + 8 - t.start[idx],
        },
    )
    later: NDArray[np.bool_] = frag_off != 0
    # A non-first fragment's payload is the middle of a datagram: no header to descend to.
    _record_proto(t, idx[later], nxt[later])
    t.stop(idx[later])
    return later


def _record_proto(t: PacketTable, idx: NDArray[np.int64], nh: NDArray[np.int64]) -> None:
    t.put(t.current(idx), {"proto": nh})


def _finish(t: PacketTable, idx: NDArray[np.int64], nh: NDArray[np.int64]) -> None:
    _record_proto(t, idx, nh)
    t.hand_on(idx, t.pos[idx], NS.IPPROTO, nh)


register(NS.ETHERTYPE, 0x86DD, "ipv6", decode)
register(NS.PPP, 0x0057, "ipv6", decode)  # RFC 5072
register(NS.TUNNEL_PROTO, 0x86DD, "ipv6", decode)
register(NS.IPPROTO, 41, "ipv6-in-ip", decode, tunnel=Tunnel.IP6)  # 6in4 (RFC 4213), 6in6
