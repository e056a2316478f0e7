"""Geneve (RFC 8926 section 3.4): 8 bytes + options, then a protocol by EtherType."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 8, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    b0 = t.v.u8[p].astype(np.int64)
    badver = (b0 >> 6) != 0  # only version 0 is defined
    t.flag(idx[badver], Anomaly.TUNNEL_BAD_VERSION)
    idx, p, b0 = idx[~badver], p[~badver], b0[~badver]
    hlen = 8 + (b0 & 0x3F) * 4
    fits = t.fits(idx, hlen)
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, hlen = idx[fits], p[fits], hlen[fits]
    t.vni[idx] = (t.v.be32[p + 4] >> 8).astype(np.int64)
    t.hand_on(idx, p + hlen, NS.TUNNEL_PROTO, t.v.be16[p + 2].astype(np.int64))


register(NS.UDPPORT, 6081, "geneve", decode, tunnel=Tunnel.GENEVE)
