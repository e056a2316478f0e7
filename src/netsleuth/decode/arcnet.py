"""ARCnet as Linux captures it (LINKTYPE_ARCNET_LINUX, 129): source and destination
station (a byte each), 2 bytes of the Linux driver's buffer offset, the protocol id, then
(for the RFC 1201 ids) a split flag and a 16-bit sequence number: 8 bytes, or 5 for the
RFC 1051 ids and ANSI/ATA 878.1 diagnostics (tcpdump print-arcnet.c arcnet_linux_if_print,
ARC_LINUX_HDRLEN and ARC_LINUX_HDRNEWLEN). The Linux driver hands whole packets to the
capture, so the split flag does not matter here. Protocol ids that carry IPv4, IPv6, ARP
and RARP are decoded by their EtherType; AppleTalk, IPX and the others end decoding."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

SHORT, LONG = 5, 8
TYPE_AT = 4
# RFC 1051 IP and ARP, and diagnostics: the short header.
SHORT_TYPES = (0xF0, 0xF1, 0x80)
# Protocol id -> EtherType: RFC 1201 IP 212, ARP 213, RARP 214; RFC 1051 IP 240, ARP 241;
# IPv6 0xC4 (RFC 2497).
ETHERTYPES = {0xD4: 0x0800, 0xD5: 0x0806, 0xD6: 0x8035, 0xF0: 0x0800, 0xF1: 0x0806, 0xC4: 0x86DD}


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.ARCNET
    idx = t.short(idx, SHORT, Anomaly.L2_TRUNCATED)
    kind = t.v.u8[t.pos[idx] + TYPE_AT]
    hlen = np.where(np.isin(kind, SHORT_TYPES), SHORT, LONG)
    idx = t.short(idx, hlen, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    kind = t.v.u8[p + TYPE_AT]
    ether = np.zeros(idx.shape[0], dtype=np.int64)
    for proto, et in ETHERTYPES.items():
        ether[kind == proto] = et
    known = ether != 0
    t.stop(idx[~known])
    idx, p, kind, ether = idx[known], p[known], kind[known], ether[known]
    t.ethertype[idx] = ether
    start = p + np.where(np.isin(kind, SHORT_TYPES), SHORT, LONG)
    t.hand_on(idx, start, NS.ETHERTYPE, ether)


register(NS.LINKTYPE, 129, "arcnet-linux", from_linktype)  # LINKTYPE_ARCNET_LINUX
