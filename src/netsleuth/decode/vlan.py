"""IEEE 802.1Q customer tags and 802.1ad service tags (QinQ)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

# Real stacks carry two tags, rarely three; more is a crafted packet (and the kernel's
# flow dissector also stops after a few, MAX_FLOW_DISSECT_HDRS).
MAX_TAGS = 8


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 4, Anomaly.L2_TRUNCATED)
    deep = t.vlan_n[idx] >= MAX_TAGS
    t.flag(idx[deep], Anomaly.VLAN_TOO_DEEP)
    idx = idx[~deep]
    p = t.pos[idx]
    vid = t.v.be16[p] & 0x0FFF
    typ = t.v.be16[p + 2]
    n = t.vlan_n[idx]
    t.vlan1[idx[n == 0]] = vid[n == 0]
    t.vlan2[idx[n == 1]] = vid[n == 1]
    t.vlan_n[idx] = n + 1
    ether = typ >= ethernet.MIN_ETHERTYPE
    e = idx[ether]
    t.ethertype[e] = typ[ether]
    t.hand_on(e, p[ether] + 4, NS.ETHERTYPE, typ[ether].astype(np.int64))
    ethernet.length_field(t, idx[~ether], p[~ether] + 4, typ[~ether])


register(NS.ETHERTYPE, 0x8100, "802.1q", decode)
register(NS.ETHERTYPE, 0x88A8, "802.1ad", decode)
register(NS.ETHERTYPE, 0x9100, "802.1q-legacy-qinq", decode)
