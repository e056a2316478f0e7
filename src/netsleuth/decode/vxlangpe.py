"""VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe-12 section 3, IANA UDP port 4790): flags (version
in bits 2-3, P: next protocol present), 2 reserved bytes, next protocol, 24-bit VNI; the
next protocol values are NSH's (1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import nsh
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

HLEN = 8


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, HLEN, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    badver = ((t.v.u8[p] >> 4) & 0x03) != 0  # version 0 only (section 3.3)
    t.flag(idx[badver], Anomaly.TUNNEL_BAD_VERSION)
    idx, p = idx[~badver], p[~badver]
    t.vni[idx] = (t.v.be32[p + 4] >> 8).astype(np.int64)
    nsh.hand_next(t, idx, p + HLEN, t.v.u8[p + 3])


register(NS.UDPPORT, 4790, "vxlan-gpe", decode, tunnel=Tunnel.VXLAN_GPE)
