"""Solaris ipnet captures (LINKTYPE_IPNET, 226; snoop and tcpdump on Solaris ipnet
devices): a 24-byte header (version, address family, hook type, packet length, interface
and group interface index, source and destination zone), then the IP packet. Families are
Solaris's: 2 AF_INET, 26 AF_INET6 (tcpdump print-ipnet.c).

The interface index (offset 8) and hook type (offset 2: IPOBS_HOOK_INBOUND 0, OUTBOUND 1,
LOCAL 2; illumos sys/hook_event.h) say where the packet was seen, for the fragment keys
(fragments.observed): an ipnet capture of a router's interfaces sees a forwarded datagram
arrive and leave. The hook is written in the capturing host's byte order: tcpdump's e1000g.pcap,
from x86, holds 0 (inbound) and 256 (outbound, 1) where tshark reads it big-endian; so both
bytes count, folded into one (the defined hooks are 0 to 2)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, WAY_IN, WAY_OUT, Anomaly, PacketTable

HLEN = 24
FAMILIES = {2: 0x0800, 26: 0x86DD}


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.IPNET
    idx = t.short(idx, HLEN, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    t.ifindex[idx] = t.v.be32[p + 8]
    hook = t.v.be16[p + 2]
    t.pkttype[idx] = (hook | hook >> 8) & 0xFF
    # IPOBS_HOOK_INBOUND 0, IPOBS_HOOK_OUTBOUND 1; LOCAL (2) is neither.
    t.way[idx] = np.select([t.pkttype[idx] == 0, t.pkttype[idx] == 1], [WAY_IN, WAY_OUT], 0)
    family = t.v.u8[p + 1]
    known = np.zeros(idx.shape[0], dtype=np.bool_)
    for fam, et in FAMILIES.items():
        sel = family == fam
        t.ethertype[idx[sel]] = et
        t.hand_on(idx[sel], t.pos[idx[sel]] + HLEN, NS.ETHERTYPE, et)
        known |= sel
    t.flag(idx[~known], Anomaly.L2_UNKNOWN_ETHERTYPE)


register(NS.LINKTYPE, 226, "ipnet", from_linktype)  # LINKTYPE_IPNET
