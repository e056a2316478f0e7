"""IEEE 802.1ah Provider Backbone Bridging (MAC-in-MAC): after the I-TAG's EtherType 0x88E7,
a 4-byte I-TAG TCI (I-PCP, I-DEI, UCA, 24-bit I-SID), then the customer's Ethernet frame
from its destination address (IEEE 802.1Q-2018 clause 9.7)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Shim

ITAG_TCI = 4


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.mark_shim(idx, Shim.PBB)
    idx = t.short(idx, ITAG_TCI, Anomaly.L2_TRUNCATED)
    t.hand_on(idx, t.pos[idx] + ITAG_TCI, NS.FRAME, FrameKey.ETHERNET)


register(NS.ETHERTYPE, 0x88E7, "802.1ah-pbb", decode)
