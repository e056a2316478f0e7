"""IP over InfiniBand captures (LINKTYPE_IPOIB, 242; tcpdump on a Linux ipoib device, RFC
4391): a 44-byte header, the 16-bit protocol type at offset 40 (an EtherType, RFC 4391
section 6) then 2 reserved bytes, then the packet (tcpdump print-ipoib.c: IPOIB_HDRLEN 44,
the type read at bp + 40)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

HLEN = 44
TYPE_AT = 40


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.IPOIB
    idx = t.short(idx, HLEN, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    proto = t.v.be16[p + TYPE_AT]
    ether = proto >= ethernet.MIN_ETHERTYPE
    t.ethertype[idx] = proto
    t.hand_on(idx[ether], p[ether] + HLEN, NS.ETHERTYPE, proto[ether].astype(np.int64))
    t.flag(idx[~ether], Anomaly.L2_UNKNOWN_ETHERTYPE)


register(NS.LINKTYPE, 242, "ipoib", from_linktype)  # LINKTYPE_IPOIB
