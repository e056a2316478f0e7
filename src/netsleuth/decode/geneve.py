"""Geneve (RFC 8926 section 3.4): 8 bytes + options, then a protocol by EtherType."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, PacketTable, Tunnel


def plausible(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Version 0 (the only one defined) and the options inside the payload."""
    ok = t.fits(idx, 8)
    b0 = t.v.u8[t.pos[idx[ok]]].astype(np.int64)
    ok[ok] = ((b0 >> 6) == 0) & t.fits(idx[ok], 8 + (b0 & 0x3F) * 4)
    return ok


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    p = t.pos[idx]  # plausible(): version 0, header and options there
    hlen = 8 + (t.v.u8[p].astype(np.int64) & 0x3F) * 4
    t.vni[idx] = (t.v.be32[p + 4] >> 8).astype(np.int64)
    t.hand_on(idx, p + hlen, NS.TUNNEL_PROTO, t.v.be16[p + 2].astype(np.int64))


register(NS.UDPPORT, 6081, "geneve", decode, tunnel=Tunnel.GENEVE, accept=plausible)
