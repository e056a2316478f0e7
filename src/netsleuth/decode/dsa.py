"""Ethernet frames with a switch chip's tag, as Linux DSA captures them on the conduit port
(tcpdump -i on the CPU port of a switch the kernel drives: net/dsa/tag_dsa.c,
tag_brcm.c): Marvell DSA (LINKTYPE_DSA_TAG_DSA, 284) a 4-byte tag after the source MAC,
Marvell EDSA (285) an EtherType (0xDADA by default), 2 reserved bytes and the same tag,
Broadcom (281) a 4-byte tag after the source MAC, Broadcom prepended (282) a 4-byte tag
before the destination MAC. The type/length field follows the tag in each (tcpdump
print-dsa.c and print-brcmb.c; the tcpdump corpus's dsa, edsa, brcm-tag and
brcm-tag-prepend captures). The tag is named by its link type and not decoded further."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

MACS = 12


def _tagged(t: PacketTable, idx: NDArray[np.int64], before: int, tag_len: int) -> None:
    """`before` bytes, the MAC addresses, a `tag_len`-byte tag, then the type or length."""
    t.l2[idx] = L2.ETHERNET
    idx = t.short(idx, before + MACS + tag_len + 2, Anomaly.L2_TRUNCATED)
    t.pos[idx] += before + MACS
    ethernet.tag_then_type(t, idx, tag_len)


def dsa(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _tagged(t, idx, 0, 4)


def edsa(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _tagged(t, idx, 0, 8)


def brcm(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _tagged(t, idx, 0, 4)


def brcm_prepend(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _tagged(t, idx, 4, 0)


register(NS.LINKTYPE, 281, "dsa-brcm", brcm)  # LINKTYPE_DSA_TAG_BRCM
register(NS.LINKTYPE, 282, "dsa-brcm-prepend", brcm_prepend)  # LINKTYPE_DSA_TAG_BRCM_PREPEND
register(NS.LINKTYPE, 284, "dsa-marvell", dsa)  # LINKTYPE_DSA_TAG_DSA
register(NS.LINKTYPE, 285, "dsa-marvell-edsa", edsa)  # LINKTYPE_DSA_TAG_EDSA
