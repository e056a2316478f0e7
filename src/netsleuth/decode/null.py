"""BSD loopback encapsulation: a 4-byte address family before the IP header.

LINKTYPE_NULL (0) stores it in the capturing host's byte order, LINKTYPE_LOOP (108) in
network byte order (tcpdump.org link-layer header types). IPv6's AF_INET6 differs by OS:
24 (NetBSD, OpenBSD, BSD/OS), 28 (FreeBSD), 30 (Darwin), 10 (Linux).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

AF_INET = 2
AF_INET6 = (10, 24, 28, 30)


def _decode(t: PacketTable, idx: NDArray[np.int64], network_order: bool) -> None:
    t.l2[idx] = L2.NULL
    idx = t.short(idx, 4, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    if network_order:
        af = t.v.be32[p].astype(np.int64)
    else:
        # Host order of an unknown host: a family is a small number, so whichever reading
        # gives one is right.
        le = t.v.le32[p].astype(np.int64)
        af = np.where(le > 0xFFFF, t.v.be32[p].astype(np.int64), le)
    v4 = af == AF_INET
    v6 = np.isin(af, AF_INET6)
    t.hand_on(idx[v4], p[v4] + 4, NS.ETHERTYPE, 0x0800)
    t.hand_on(idx[v6], p[v6] + 4, NS.ETHERTYPE, 0x86DD)
    t.flag(idx[~v4 & ~v6], Anomaly.L2_UNKNOWN_ETHERTYPE)


def decode_null(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _decode(t, idx, network_order=False)


def decode_loop(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _decode(t, idx, network_order=True)


register(NS.LINKTYPE, 0, "null", decode_null)
register(NS.LINKTYPE, 108, "loop", decode_loop)
