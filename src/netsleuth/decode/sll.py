"""Linux "cooked" captures (tcpdump -i any): LINKTYPE_LINUX_SLL (113, 16-byte header,
protocol at offset 14) and LINKTYPE_LINUX_SLL2 (276, 20-byte header, protocol at 0)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, WAY_IN, WAY_OUT, Anomaly, FrameKey, PacketTable

# Protocol values below 1536 are Linux ETH_P_* pseudo-types (include/uapi/linux/if_ether.h):
# ETH_P_802_2 (4) means the frame starts with an LLC header: incident 2's skb->protocol.
ETH_P_802_2 = 0x0004
PACKET_OUTGOING = 4  # sll_pkttype of a packet this host sent (include/uapi/linux/if_packet.h)
SLL_BYTES, SLL2_BYTES = 16, 20  # the headers' lengths: where the network header starts


def _decode(t: PacketTable, idx: NDArray[np.int64], hlen: int, proto_at: int, kind: L2) -> None:
    t.l2[idx] = kind
    idx = t.short(idx, hlen, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    # Where the kernel saw the packet. The packet type is sll_pkttype, an unsigned char in
    # struct sockaddr_ll (include/uapi/linux/if_packet.h), which SLL v1 writes in 16 bits:
    # its low byte is all of it. SLL2 adds the interface index (tcpdump.org linktypes,
    # LINKTYPE_LINUX_SLL2: 4 at offset 4, the packet type 1 at offset 10).
    if kind == L2.SLL2:
        t.ifindex[idx] = t.v.be32[p + 4]
        t.pkttype[idx] = t.v.u8[p + 10]
    else:
        t.pkttype[idx] = t.v.be16[p] & 0xFF
    t.way[idx] = np.where(t.pkttype[idx] == PACKET_OUTGOING, WAY_OUT, WAY_IN)
    proto = t.v.be16[p + proto_at]
    t.ethertype[idx] = proto
    ether = proto >= ethernet.MIN_ETHERTYPE
    t.hand_on(idx[ether], p[ether] + hlen, NS.ETHERTYPE, proto[ether].astype(np.int64))
    llc = proto == ETH_P_802_2
    t.hand_on(idx[llc], p[llc] + hlen, NS.FRAME, FrameKey.LLC)
    t.stop(idx[~ether & ~llc])


def decode_sll(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _decode(t, idx, SLL_BYTES, 14, L2.SLL)


def decode_sll2(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _decode(t, idx, SLL2_BYTES, 0, L2.SLL2)


register(NS.LINKTYPE, 113, "linux-sll", decode_sll)
register(NS.LINKTYPE, 276, "linux-sll2", decode_sll2)
