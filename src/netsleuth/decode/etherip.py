"""Ethernet carried directly in IP. EtherIP (IP protocol 97, RFC 3378 section 3): a 2-byte
header, version 3 in its top 4 bits, then the frame. IP protocol 143 (IANA "Ethernet",
RFC 8986 section 10.1: SRv6 End.DX2 and H.Encaps.L2): the frame with no header at all."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Tunnel

ETHERIP_VERSION = 3


def etherip(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 2, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    ok = (t.v.u8[p] >> 4) == ETHERIP_VERSION
    t.flag(idx[~ok], Anomaly.TUNNEL_BAD_VERSION)
    t.hand_on(idx[ok], p[ok] + 2, NS.FRAME, FrameKey.ETHERNET)


def ethernet_in_ip(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.hand_on(idx, t.pos[idx], NS.FRAME, FrameKey.ETHERNET)


register(NS.IPPROTO, 97, "etherip", etherip, tunnel=Tunnel.ETHERIP)
register(NS.IPPROTO, 143, "ethernet-in-ip", ethernet_in_ip, tunnel=Tunnel.ETHERIP)
