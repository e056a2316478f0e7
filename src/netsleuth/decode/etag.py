"""IEEE 802.1BR E-Tag (EtherType 0x893F): a 6-byte tag (E-PCP/E-DEI, ingress and
destination E-CIDs, GRP) then the frame's own type/length field (IEEE 802.1BR-2012
clause 7.6: the E-TAG is 8 octets with its TPID)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, PacketTable, Shim

TAG_LEN = 6


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.mark_shim(idx, Shim.ETAG)
    ethernet.tag_then_type(t, idx, TAG_LEN)


register(NS.ETHERTYPE, 0x893F, "e-tag", decode)
