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
a forwarded or bridged datagram arrive and leave. The interface is its name (pth_ifname, 24
bytes at offset 12), folded into 32 bits (the type and unit at offsets 80 and 82 would be
shorter, but tcpdump's own macOS capture, LINKTYPE_PKTAP.pcap, holds 0 and 0 for en0); the
direction is pth_flags' low bits (PTH_FLAG_DIR_IN 1, PTH_FLAG_DIR_OUT 2: xnu
bsd/net/pktap.h). Two names of one capture that fold alike (one chance in 2^32 a pair)
would be one point.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

HDR = 108  # sizeof(pktap_header_t): a shorter length field is no PKTAP header
REC_PACKET = 1
FLAGS_AT, NAME_AT, NAME_LEN = 36, 12, 24
DIRECTION = 0x3  # PTH_FLAG_DIR_IN | PTH_FLAG_DIR_OUT
# Odd 64-bit multipliers, one per 8-byte word of the name (any odd constants would do).
_FOLD = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], np.uint64)


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
    t.ifindex[idx] = _fold_name(t.v.u8[(p + NAME_AT)[:, None] + np.arange(NAME_LEN)])
    t.pkttype[idx] = t.v.le32[p + FLAGS_AT] & DIRECTION
    # PTH_FLAG_DIR_IN 1, PTH_FLAG_DIR_OUT 2: pcapng's values; both bits set say nothing.
    said = t.pkttype[idx]
    t.way[idx] = np.where(said == DIRECTION, 0, said)
    t.hand_on(idx, p + t.v.le32[p].astype(np.int64), NS.LINKTYPE, t.v.le32[p + 8].astype(np.int64))


def _fold_name(names: NDArray[np.uint8]) -> NDArray[np.uint32]:
    """Each 24-byte interface name as 32 bits: its three little-endian words multiplied in
    and mixed down, the same on any host."""
    words = np.ascontiguousarray(names).view("<u8").astype(np.uint64)
    h = (words * _FOLD).sum(axis=1, dtype=np.uint64)
    h ^= h >> np.uint64(29)
    h *= _FOLD[0]
    folded: NDArray[np.uint32] = (h >> np.uint64(32)).astype(np.uint32)
    return folded


register(NS.LINKTYPE, 258, "pktap", from_linktype)  # LINKTYPE_PKTAP
register(NS.LINKTYPE, 149, "pktap-user2", from_linktype)  # LINKTYPE_USER2, macOS's PKTAP
