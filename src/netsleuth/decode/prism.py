"""The two radio headers before radiotap: Prism (LINKTYPE_IEEE802_11_PRISM, 119; the
wlan-ng and madwifi drivers) and AVS (LINKTYPE_IEEE802_11_AVS, 163; also found inside 119
captures). Each is followed by an 802.11 frame (ieee80211.py), with no FCS flag to read
(Wireshark passes these frames on with the FCS unknown and assumes none by default).

- Prism: a message code, the header's length (144 bytes in practice), the device name and
  ten DID items, in the writer's byte order: a message code whose low 16 bits read as zero
  in little-endian is big-endian (Wireshark packet-ieee80211-prism.c).
- AVS (the "wlancap" header): a big-endian magic, 0x80211001 (version 1) or 0x80211002
  (version 2), then the header's length (big-endian), which the frame follows
  (Wireshark packet-ieee80211-wlancap.c). A Prism capture whose record starts with the
  magic holds an AVS header instead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ieee80211
from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

FIXED = 8  # code or magic, then the length
AVS_MAGIC = (0x80211001, 0x80211002)


def prism(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.IEEE80211
    idx = t.short(idx, FIXED, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    avs = np.isin(t.v.be32[p], AVS_MAGIC)
    big = (t.v.le32[p] & 0xFFFF) == 0
    length = np.where(avs | big, t.v.be32[p + 4], t.v.le32[p + 4]).astype(np.int64)
    _frame(t, idx, length)


def avs(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.IEEE80211
    idx = t.short(idx, FIXED, Anomaly.L2_TRUNCATED)
    _frame(t, idx, t.v.be32[t.pos[idx] + 4].astype(np.int64))


def _frame(t: PacketTable, idx: NDArray[np.int64], length: NDArray[np.int64]) -> None:
    """The 802.11 frame after a header of `length` bytes."""
    bad = (length < FIXED) | (t.pos[idx] + length > t.wend[idx])
    t.flag(idx[bad], Anomaly.BAD_PSEUDO_HEADER)
    idx, length = idx[~bad], length[~bad]
    have = t.fits(idx, length)
    t.flag(idx[~have], Anomaly.L2_TRUNCATED)
    idx, length = idx[have], length[have]
    t.pos[idx] += length
    ieee80211.frame(t, idx, None)


register(NS.LINKTYPE, 119, "prism", prism)  # LINKTYPE_IEEE802_11_PRISM
register(NS.LINKTYPE, 163, "avs", avs)  # LINKTYPE_IEEE802_11_AVS
