"""VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe-12 section 3, IANA UDP port 4790): flags (version
in bits 2-3, P: next protocol present), 2 reserved bytes, next protocol, 24-bit VNI; the
next protocol values are NSH's (1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import nsh
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, PacketTable, Tunnel

HLEN = 8


def plausible(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    """The 8-byte header, version 0 (section 3.3 defines no other)."""
    ok = t.fits(idx, HLEN)
    ok[ok] = ((t.v.u8[t.pos[idx[ok]]] >> 4) & 0x03) == 0
    return ok


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    p = t.pos[idx]  # plausible(): header there, version 0
    t.vni[idx] = (t.v.be32[p + 4] >> 8).astype(np.int64)
    nsh.hand_next(t, idx, p + HLEN, t.v.u8[p + 3])


register(NS.UDPPORT, 4790, "vxlan-gpe", decode, tunnel=Tunnel.VXLAN_GPE, accept=plausible)
