"""IP over ATM, as the PDU after reassembly: LINKTYPE_ATM_RFC1483 (100), an 802.2 LLC
header first (RFC 2684, formerly RFC 1483: LLC/SNAP encapsulation), and LINKTYPE_ATM_CLIP
(106, Linux Classical IP over ATM, RFC 2225), where the packet starts with an LLC/SNAP
header when it has one and is raw IP otherwise (tcpdump print-cip.c: it looks for the
RFC 1483 LLC/SNAP bytes; tshark's clip dissector reads raw IP)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, FrameKey, PacketTable

LLC_SNAP = bytes.fromhex("aaaa03000000")


def rfc1483(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.ATM
    t.hand_on(idx, t.pos[idx], NS.FRAME, FrameKey.LLC)


def clip(t: PacketTable, idx: NDArray[np.int64]) -> None:
    """LLC when the captured bytes, up to 6, are the LLC/SNAP header's (a record cut inside
    it is a cut LLC header, as tcpdump compares min(6, caplen) bytes); raw IP otherwise."""
    t.l2[idx] = L2.ATM
    p = t.pos[idx]
    have = t.end[idx] - p
    snap = np.ones(idx.shape[0], dtype=np.bool_)
    for k, byte in enumerate(LLC_SNAP):
        inside = have > k
        snap[inside] &= t.v.u8[p[inside] + k] == byte
    t.hand_on(idx[snap], p[snap], NS.FRAME, FrameKey.LLC)
    t.hand_on(idx[~snap], p[~snap], NS.FRAME, FrameKey.RAWIP)


register(NS.LINKTYPE, 100, "atm-rfc1483", rfc1483)  # LINKTYPE_ATM_RFC1483
register(NS.LINKTYPE, 106, "atm-clip", clip)  # LINKTYPE_ATM_CLIP
