"""PPP inside GRE version 1 (PPTP): optional address/control 0xff03 and a 1- or 2-byte
protocol field (RFC 1661 sections 3.1 and 6.5, protocol field compression)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 1, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    ac = (t.v.u8[p] == 0xFF) & (t.v.u8[p + 1] == 0x03)
    p = p + np.where(ac, 2, 0)
    t.pos[idx] = p
    idx = t.short(idx, 1, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    first = t.v.u8[p].astype(np.int64)
    # An odd first byte is a compressed one-byte protocol (PFC); else two bytes.
    short = (first & 1) == 1
    plen = np.where(short, 1, 2)
    fits = t.fits(idx, plen)
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, short, plen, first = idx[fits], p[fits], short[fits], plen[fits], first[fits]
    proto = np.where(short, first, t.v.be16[p].astype(np.int64))
    t.ppp_proto[idx] = proto
    t.hand_on(idx, p + plen, NS.PPP, proto)


register(NS.ETHERTYPE, 0x880B, "ppp", decode)
