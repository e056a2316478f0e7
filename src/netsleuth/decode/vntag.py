"""Cisco VN-Tag (EtherType 0x8926, the pre-standard of IEEE 802.1Qbh): a 4-byte tag
(direction, pointer, destination and source virtual interface) then the frame's own
type/length field (Wireshark packet-vntag.c field layout; IEEE 802.1 document new-pelissier-
vntag-seminar-0508)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, PacketTable, Shim

TAG_LEN = 4


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.mark_shim(idx, Shim.VNTAG)
    ethernet.tag_then_type(t, idx, TAG_LEN)


register(NS.ETHERTYPE, 0x8926, "vn-tag", decode)
