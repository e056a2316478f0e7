"""VXLAN (RFC 7348): 8-byte header with a 24-bit VNI, then an Ethernet frame."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, FrameKey, PacketTable, Tunnel

I_FLAG = 0x08  # RFC 7348 section 5: "MUST be set to 1 for a valid VXLAN Network ID"
HLEN = 8


def plausible(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    """A VXLAN header: 8 bytes with the I flag (_prefix.c vxlan() checks the same)."""
    ok = t.fits(idx, HLEN)
    ok[ok] = (t.v.u8[t.pos[idx[ok]]] & I_FLAG) != 0
    return ok


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    p = t.pos[idx]  # plausible(): the header is there
    t.vni[idx] = (t.v.be32[p + 4] >> 8).astype(np.int64)
    t.hand_on(idx, p + HLEN, NS.FRAME, FrameKey.ETHERNET)


register(NS.UDPPORT, 4789, "vxlan", decode, tunnel=Tunnel.VXLAN, accept=plausible)  # RFC 7348
# Linux's old default port
register(NS.UDPPORT, 8472, "vxlan-linux", decode, tunnel=Tunnel.VXLAN, accept=plausible)
