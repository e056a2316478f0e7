"""Network Service Header (RFC 8300, EtherType 0x894F): a 4-byte base header (version,
O bit, TTL, length in 4-byte words, MD type, next protocol), the service path header and
metadata, then the packet named by next protocol (RFC 8300 section 2.2; IANA NSH Next
Protocol registry: 1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Shim

MIN_WORDS = 2  # base header + service path header
NEXT = {1: (NS.ETHERTYPE, 0x0800), 2: (NS.ETHERTYPE, 0x86DD), 4: (NS.ETHERTYPE, 0x894F)}
NEXT_ETHERNET, NEXT_MPLS = 3, 5


def hand_next(
    t: PacketTable, idx: NDArray[np.int64], at: NDArray[np.int64], nxt: NDArray[np.uint8]
) -> None:
    """Hand on by an NSH Next Protocol value (also VXLAN-GPE's, the same IANA registry)."""
    known = np.zeros(idx.shape[0], dtype=np.bool_)
    for code, (ns, key) in NEXT.items():
        sel = nxt == code
        t.hand_on(idx[sel], at[sel], ns, key)
        known |= sel
    eth = nxt == NEXT_ETHERNET
    t.hand_on(idx[eth], at[eth], NS.FRAME, FrameKey.ETHERNET)
    mpls = nxt == NEXT_MPLS
    t.hand_on(idx[mpls], at[mpls], NS.ETHERTYPE, 0x8847)
    t.stop(idx[~known & ~eth & ~mpls])


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.mark_shim(idx, Shim.NSH)
    idx = t.short(idx, 4 * MIN_WORDS, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    badver = (t.v.u8[p] >> 6) != 0  # only version 0 is defined (section 2.2)
    t.flag(idx[badver], Anomaly.TUNNEL_BAD_VERSION)
    idx, p = idx[~badver], p[~badver]
    words = (t.v.u8[p + 1] & 0x3F).astype(np.int64)
    hlen = 4 * words
    fits = (words >= MIN_WORDS) & t.fits(idx, hlen)
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, hlen = idx[fits], p[fits], hlen[fits]
    hand_next(t, idx, p + hlen, t.v.u8[p + 3])


register(NS.ETHERTYPE, 0x894F, "nsh", decode)
