"""VXLAN (RFC 7348): 8-byte header with a 24-bit VNI, then an Ethernet frame."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Tunnel


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 8, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    t.vni[idx] = (t.v.be32[p + 4] >> 8).astype(np.int64)
    t.hand_on(idx, p + 8, NS.FRAME, FrameKey.ETHERNET)


register(NS.UDPPORT, 4789, "vxlan", decode, tunnel=Tunnel.VXLAN)  # IANA, RFC 7348
register(NS.UDPPORT, 8472, "vxlan-linux", decode, tunnel=Tunnel.VXLAN)  # Linux's old default
