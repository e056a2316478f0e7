"""Linux netfilter NFLOG captures (LINKTYPE_NFLOG, 239; tcpdump -i nflog): a 4-byte header
(address family, version 0, resource id) and TLVs whose length and type are in the
capturing host's byte order; the TLV of type NFULA_PAYLOAD (9) holds the packet from its
network header (tcpdump.org LINKTYPE_NFLOG; include/uapi/linux/netfilter/nfnetlink_log.h).

The NFULA_PACKET_HDR TLV (1: struct nfulnl_msg_packet_hdr, a big-endian hardware protocol,
then the netfilter hook) says where the rule logged the packet: PacketTable.pkttype holds
the hook, so a forwarded datagram logged as it arrives (PREROUTING, FORWARD) and as it
leaves (POSTROUTING) is two sightings, and PacketTable.way says it was sent by this host
on the output hooks (LOCAL_OUT, POST_ROUTING: include/uapi/linux/netfilter.h, enum
nf_inet_hooks), received on the others.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, WAY_IN, WAY_OUT, Anomaly, PacketTable

NFULA_PACKET_HDR, NFULA_PAYLOAD = 1, 9
NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING = 3, 4
AF_INET, AF_INET6 = 2, 10
# Real NFLOG records carry about ten TLVs (prefix, uid, gid, timestamp, hardware header...);
# the payload comes after those. More than this many is not a record netfilter wrote.
MAX_TLVS = 32


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.NFLOG
    idx = t.short(idx, 4, Anomaly.L2_TRUNCATED)
    family = t.v.u8[t.pos[idx]].astype(np.int64)
    fam_ok = (family == AF_INET) | (family == AF_INET6)
    t.flag(idx[~fam_ok], Anomaly.L2_UNKNOWN_ETHERTYPE)
    idx, family = idx[fam_ok], family[fam_ok]
    at = t.pos[idx] + 4
    # Byte order: the first TLV's length read little-endian must fit the record, else the
    # capturing host was big-endian.
    le_len = t.v.le16[at].astype(np.int64)
    little = (le_len >= 4) & (at + le_len <= t.end[idx])
    walking = np.arange(idx.shape[0])
    for _ in range(MAX_TLVS):
        if walking.shape[0] == 0:
            return
        w, a = idx[walking], at[walking]
        # A record may end after its last TLV with no payload (a zero copy range).
        ended = a >= t.end[w]
        t.stop(w[ended])
        fits = a + 4 <= t.end[w]
        t.flag(w[~fits & ~ended], Anomaly.L2_TRUNCATED)
        walking, w, a = walking[fits], w[fits], a[fits]
        lil = little[walking]
        length = np.where(lil, t.v.le16[a], t.v.be16[a]).astype(np.int64)
        typ = np.where(lil, t.v.le16[a + 2], t.v.be16[a + 2]).astype(np.int64)
        bad = (length < 4) | (a + length > t.end[w])
        t.flag(w[bad], Anomaly.L2_BAD_LENGTH)
        _hook(t, w, a, ~bad & (typ == NFULA_PACKET_HDR) & (length >= 8))
        payload = ~bad & (typ == NFULA_PAYLOAD)
        pw = w[payload]
        t.trim(pw, (a + length)[payload])
        et = np.where(family[walking[payload]] == AF_INET, 0x0800, 0x86DD)
        t.ethertype[pw] = et
        t.hand_on(pw, (a + 4)[payload], NS.ETHERTYPE, et)
        more = ~bad & ~payload
        walking = walking[more]
        at[walking] = (a + ((length + 3) & ~3))[more]
    t.flag(idx[walking], Anomaly.L2_BAD_LENGTH)


def _hook(
    t: PacketTable, w: NDArray[np.int64], a: NDArray[np.int64], hdr: NDArray[np.bool_]
) -> None:
    """The packet header TLVs among `w` (at `a`, where `hdr`): the hook, its third byte."""
    rows = w[hdr]
    hook = t.v.u8[a[hdr] + 6]
    t.pkttype[rows] = hook
    sent = (hook == NF_INET_LOCAL_OUT) | (hook == NF_INET_POST_ROUTING)
    t.way[rows] = np.where(sent, WAY_OUT, WAY_IN)


register(NS.LINKTYPE, 239, "nflog", from_linktype)  # LINKTYPE_NFLOG
