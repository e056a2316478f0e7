"""Raw IP link types and other places where only the version nibble tells IPv4 from IPv6."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, FrameKey, PacketTable

ETHERTYPE_BY_VERSION = {4: 0x0800, 6: 0x86DD}


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 1, Anomaly.IPV4_TRUNCATED)
    ver = t.v.u8[t.pos[idx]] >> 4
    for v, et in ETHERTYPE_BY_VERSION.items():
        sel = idx[ver == v]
        t.hand_on(sel, t.pos[sel], NS.ETHERTYPE, et)
    t.flag(idx[(ver != 4) & (ver != 6)], Anomaly.IP_BAD_VERSION)


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.RAW
    decode(t, idx)


def ipv4_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.RAW
    t.hand_on(idx, t.pos[idx], NS.ETHERTYPE, 0x0800)


def ipv6_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.RAW
    t.hand_on(idx, t.pos[idx], NS.ETHERTYPE, 0x86DD)


# LINKTYPE_RAW is 101; DLT_RAW is 12 on most systems and 14 on OpenBSD (pcap-common.c).
register(NS.LINKTYPE, 101, "raw", from_linktype)
register(NS.LINKTYPE, 12, "raw-dlt12", from_linktype)
register(NS.LINKTYPE, 14, "raw-dlt14", from_linktype)
register(NS.LINKTYPE, 228, "ipv4", ipv4_linktype)  # LINKTYPE_IPV4
register(NS.LINKTYPE, 229, "ipv6", ipv6_linktype)  # LINKTYPE_IPV6
register(NS.FRAME, FrameKey.RAWIP, "rawip", decode)
