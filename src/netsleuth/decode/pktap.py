"""PKTAP (LINKTYPE_PKTAP, 258; and LINKTYPE_USER2, 149, which macOS's tcpdump wrote before
258 was assigned): the per-packet header Apple's pktap pseudo-interface puts before each
frame, as `tcpdump -i pktap` or `-k` on macOS captures it.

The header (tcpdump print-pktap.c, pktap_header_t, little-endian) starts with its own
length (32 bits), the record type (32 bits: 1, a packet follows; 0, no data) and the DLT
of the packet that follows (32 bits); then the interface name, process and service fields,
108 bytes in all. tcpdump and tshark both read link type 149 as PKTAP too. The packet is
handed on by its DLT, as if it were a record of that link type (DLT_RAW is 12 here, which
is bound: rawip.py).

Where the packet was seen goes to the fragment keys (fragments.observed), as for Linux's
cooked captures: macOS's `tcpdump -i any` is a PKTAP capture of every interface, which sees
a forwarded or bridged datagram arrive and leave. The interface is its type and unit
(pth_iftype, pth_ifunit at offsets 80 and 82: en0 is 6/0, bridge100 209/100), the direction
pth_flags' low bits (PTH_FLAG_DIR_IN 1, PTH_FLAG_DIR_OUT 2: xnu bsd/net/pktap.h). Known
limit: two interfaces of one type and unit (en0 and awdl0, both Ethernet unit 0) are one;
their names (pth_ifname) are not kept.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

HDR = 108  # sizeof(pktap_header_t): a shorter length field is no PKTAP header
REC_PACKET = 1
FLAGS_AT, IFTYPE_AT, IFUNIT_AT = 36, 80, 82
DIRECTION = 0x3  # PTH_FLAG_DIR_IN | PTH_FLAG_DIR_OUT


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    # The length field first: one under the header's size is a bad header even in a
    # record the snap length cut (tcpdump: "pkt_len too small").
    idx = t.short(idx, 4, Anomaly.L2_TRUNCATED)
    short = t.v.le32[t.pos[idx]] < HDR
    t.flag(idx[short], Anomaly.BAD_PSEUDO_HEADER)
    idx = t.short(idx[~short], HDR, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    length = t.v.le32[p].astype(np.int64)
    dlt = t.v.le32[p + 8].astype(np.int64)
    bad = (p + length > t.wend[idx]) | (dlt >= 1 << 16)
    t.flag(idx[bad], Anomaly.BAD_PSEUDO_HEADER)
    idx = t.short(idx[~bad], length[~bad], Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    packet = t.v.le32[p + 4] == REC_PACKET
    t.stop(idx[~packet])  # no data (0), or a record type tcpdump does not print either
    idx, p = idx[packet], p[packet]
    t.ifindex[idx] = (t.v.le16[p + IFTYPE_AT].astype(np.uint32) << 16) | t.v.le16[p + IFUNIT_AT]
    t.pkttype[idx] = t.v.le32[p + FLAGS_AT] & DIRECTION
    t.hand_on(idx, p + t.v.le32[p].astype(np.int64), NS.LINKTYPE, t.v.le32[p + 8].astype(np.int64))


register(NS.LINKTYPE, 258, "pktap", from_linktype)  # LINKTYPE_PKTAP
register(NS.LINKTYPE, 149, "pktap-user2", from_linktype)  # LINKTYPE_USER2, macOS's PKTAP
