"""PPP inside GRE version 1 (PPTP), and as a link type: optional address/control 0xff03 and
a 1- or 2-byte protocol field (RFC 1661 sections 3.1 and 6.5, protocol field compression).

LINKTYPE_PPP (9) and LINKTYPE_PPP_HDLC (50) frames are PPP in HDLC-like framing (RFC 1662)
without flags and FCS; 50 also holds Cisco HDLC frames, told apart by their first byte
(0x0f or 0x8f: tcpdump.org link-layer header types)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import chdlc
from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _decode(t, idx, Anomaly.TUNNEL_TRUNCATED)


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.PPP
    _decode(t, idx, Anomaly.L2_TRUNCATED)


def decode_at_link(t: PacketTable, idx: NDArray[np.int64]) -> None:
    """PPP whose header sits in the link layer (PPPoE): a short one is an L2 truncation."""
    _decode(t, idx, Anomaly.L2_TRUNCATED)


def from_hdlc_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 1, Anomaly.L2_TRUNCATED)
    first = t.v.u8[t.pos[idx]]
    cisco = (first == chdlc.UNICAST) | (first == chdlc.BROADCAST)
    chdlc.from_linktype(t, idx[cisco])
    from_linktype(t, idx[~cisco])


def _decode(t: PacketTable, idx: NDArray[np.int64], cut: Anomaly) -> None:
    idx = t.short(idx, 1, cut)
    p = t.pos[idx]
    ac = (t.v.u8[p] == 0xFF) & (t.v.u8[p + 1] == 0x03)
    p = p + np.where(ac, 2, 0)
    t.pos[idx] = p
    idx = t.short(idx, 1, cut)
    p = t.pos[idx]
    first = t.v.u8[p].astype(np.int64)
    # An odd first byte is a compressed one-byte protocol (PFC); else two bytes.
    short = (first & 1) == 1
    plen = np.where(short, 1, 2)
    fits = t.fits(idx, plen)
    t.flag(idx[~fits], cut)
    idx, p, short, plen, first = idx[fits], p[fits], short[fits], plen[fits], first[fits]
    proto = np.where(short, first, t.v.be16[p].astype(np.int64))
    t.ppp_proto[idx] = proto
    t.hand_on(idx, p + plen, NS.PPP, proto)


register(NS.TUNNEL_PROTO, 0x880B, "ppp", decode)
register(NS.LINKTYPE, 9, "ppp", from_linktype)  # LINKTYPE_PPP
register(NS.LINKTYPE, 50, "ppp-hdlc", from_hdlc_linktype)  # LINKTYPE_PPP_HDLC
