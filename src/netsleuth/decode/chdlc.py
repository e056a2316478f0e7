"""Cisco HDLC (LINKTYPE_C_HDLC, 104): address (0x0f unicast, 0x8f broadcast), control 0x00,
then a 2-byte EtherType (tcpdump.org link-layer header types; tcpdump print-chdlc.c). SLARP
(0x8035) and Cisco CDP (0x2000) end there."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

UNICAST, BROADCAST = 0x0F, 0x8F
HLEN = 4


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.CHDLC
    idx = t.short(idx, HLEN, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    proto = t.v.be16[p + 2]
    t.ethertype[idx] = proto
    t.hand_on(idx, p + HLEN, NS.ETHERTYPE, proto.astype(np.int64))


register(NS.LINKTYPE, 104, "cisco-hdlc", from_linktype)  # LINKTYPE_C_HDLC
