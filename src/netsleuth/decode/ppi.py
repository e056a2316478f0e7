"""PPI, CACE's Per-Packet Information header (LINKTYPE_PPI, 192): what AirPcap adapters and
older Kismet releases write before each frame (Wireshark's wiretap and packet-ppi.c read
it).

The header (PPI specification 1.0, section 3) is pph_version (0), pph_flags (bit 0: the
fields are padded to 32 bits), pph_len (little-endian: the header with its fields) and
pph_dlt (32 bits: the link type of the frame that follows). Each field is a 16-bit type and
a 16-bit data length, then the data. One field matters to decoding: 802.11-Common (type 2,
20 bytes), whose flags (16 bits at data offset 8) say the 802.11 frame ends with its FCS
(bit 0) and that the FCS failed (bit 2). Such a frame is counted but not decoded past PPI,
as radiotap's F_BADFCS (radiotap.py). The frame is then handed on by its link type, as if
it were a record of that type.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

HDR = 8
FIELD = 4
COMMON, COMMON_LEN, COMMON_FLAGS = 2, 20, 8
F_FCS, F_BADFCS = 0x1, 0x4
ALIGNED = 0x1
FCS = 4
DLT_80211 = 105
# Fields a header may hold: AirPcap and Kismet write two to four; the bound keeps a
# hostile header from costing a loop step per 4 bytes.
MAX_FIELDS = 64


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, HDR, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    length = t.v.le16[p + 2].astype(np.int64)
    dlt = t.v.le32[p + 4].astype(np.int64)
    bad = (t.v.u8[p] != 0) | (length < HDR) | (p + length > t.wend[idx]) | (dlt >= 1 << 16)
    t.flag(idx[bad], Anomaly.BAD_PSEUDO_HEADER)
    idx = t.short(idx[~bad], length[~bad], Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    end = p + t.v.le16[p + 2].astype(np.int64)
    dlt = t.v.le32[p + 4].astype(np.int64)
    flags, fits = _common_flags(t, p, end)
    fcs = ((flags & F_FCS) != 0) & (dlt == DLT_80211)
    fits &= ~fcs | (end + FCS <= t.wend[idx])
    t.flag(idx[~fits], Anomaly.BAD_PSEUDO_HEADER)
    idx, end, flags, fcs, dlt = idx[fits], end[fits], flags[fits], fcs[fits], dlt[fits]
    t.trim(idx[fcs], t.wend[idx[fcs]] - FCS)
    damaged = ((flags & F_BADFCS) != 0) & (dlt == DLT_80211)
    t.l2[idx[damaged]] = L2.IEEE80211
    t.stop(idx[damaged])
    keep = ~damaged
    t.hand_on(idx[keep], end[keep], NS.LINKTYPE, dlt[keep])


def _common_flags(
    t: PacketTable, p: NDArray[np.int64], end: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Each header's 802.11-Common flags (0 when it has none) and whether its fields fit
    inside its length."""
    aligned = (t.v.u8[p + 1] & ALIGNED) != 0
    flags = np.zeros(p.shape[0], dtype=np.int64)
    fits = np.ones(p.shape[0], dtype=np.bool_)
    at = p + HDR
    walk = np.flatnonzero(at < end)
    for _ in range(MAX_FIELDS):
        if walk.shape[0] == 0:
            break
        inside = at[walk] + FIELD <= end[walk]
        fits[walk[~inside]] = False
        walk = walk[inside]
        kind = t.v.le16[at[walk]]
        size = t.v.le16[at[walk] + 2].astype(np.int64)
        size = np.where(aligned[walk], (size + 3) & ~3, size)
        data = at[walk] + FIELD
        inside = data + size <= end[walk]
        fits[walk[~inside]] = False
        common = inside & (kind == COMMON) & (size >= COMMON_LEN)
        flags[walk[common]] = t.v.le16[data[common] + COMMON_FLAGS]
        at[walk] = data + size
        walk = walk[inside & (at[walk] < end[walk])]
    fits[walk] = False  # still walking after MAX_FIELDS fields
    return flags, fits


register(NS.LINKTYPE, 192, "ppi", from_linktype)  # LINKTYPE_PPI
