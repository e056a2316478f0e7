"""PPI, CACE's Per-Packet Information header (LINKTYPE_PPI, 192): what AirPcap adapters and
older Kismet releases write before each frame (Wireshark's wiretap and packet-ppi.c read
it).

The header (PPI specification 1.0, section 3) is pph_version (0), pph_flags (bit 0: each
field starts on a 32-bit boundary), pph_len (little-endian: the header with its fields and
their padding; the frame starts there) and pph_dlt (32 bits: the link type of the frame).
Each field is a 16-bit type and a 16-bit data length, then the data. Two fields matter to
decoding, each for its own link type:
- 802.11-Common (type 2, 20 bytes), for 802.11 (105): its flags (16 bits at data offset
  8) say the frame ends with its FCS (bit 0) and that the FCS failed (bit 2);
- 802.3 Extension (type 9, 8 bytes), for Ethernet (1): flags (32 bits, bit 0: FCS
  present), then errors (32 bits: FCS, sequence, symbol, data).
A frame marked as failing is counted but not decoded past PPI, as radiotap's F_BADFCS
(radiotap.py): its bytes were damaged. The frame is then handed on by its link type, as
if it were a record of that type.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

HDR = 8
FIELD = 4
COMMON, COMMON_LEN, COMMON_FLAGS = 2, 20, 8  # 802.11-Common
F_FCS, F_BADFCS = 0x1, 0x4
EXT_8023, EXT_8023_LEN = 9, 8  # 802.3 Extension: flags, errors
ALIGNED = 0x1
FCS = 4
DLT_ETHERNET, DLT_80211 = 1, 105
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
    fcs, damaged, fits = _fcs_fields(t, p, end, dlt)
    fits &= ~fcs | (end + FCS <= t.wend[idx])
    t.flag(idx[~fits], Anomaly.BAD_PSEUDO_HEADER)
    idx, end, fcs, damaged, dlt = idx[fits], end[fits], fcs[fits], damaged[fits], dlt[fits]
    t.trim(idx[fcs], t.wend[idx[fcs]] - FCS)
    t.l2[idx[damaged]] = np.where(dlt[damaged] == DLT_80211, L2.IEEE80211, L2.ETHERNET)
    t.stop(idx[damaged])
    keep = ~damaged
    t.hand_on(idx[keep], end[keep], NS.LINKTYPE, dlt[keep])


def _fcs_fields(
    t: PacketTable, p: NDArray[np.int64], end: NDArray[np.int64], dlt: NDArray[np.int64]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Whether each frame ends with an FCS and whether it is marked damaged (by the field
    of its own link type), and whether the header's fields fit inside its length."""
    n = p.shape[0]
    fcs, damaged, fits = np.zeros(n, np.bool_), np.zeros(n, np.bool_), np.ones(n, np.bool_)
    aligned = (t.v.u8[p + 1] & ALIGNED) != 0
    at = p + HDR
    walk = np.flatnonzero(at < end)
    for _ in range(MAX_FIELDS):
        if walk.shape[0] == 0:
            break
        inside = at[walk] + FIELD <= end[walk]
        fits[walk[~inside]] = False
        walk = walk[inside]
        kind = t.v.le16[at[walk]]
        data = at[walk] + FIELD
        size = t.v.le16[at[walk] + 2].astype(np.int64)
        inside = data + size <= end[walk]
        fits[walk[~inside]] = False
        wifi = inside & (kind == COMMON) & (size >= COMMON_LEN) & (dlt[walk] == DLT_80211)
        flags = t.v.le16[data[wifi] + COMMON_FLAGS]
        fcs[walk[wifi]] = (flags & F_FCS) != 0
        damaged[walk[wifi]] = (flags & F_BADFCS) != 0
        wire = inside & (kind == EXT_8023) & (size >= EXT_8023_LEN) & (dlt[walk] == DLT_ETHERNET)
        fcs[walk[wire]] = (t.v.le32[data[wire]] & F_FCS) != 0
        damaged[walk[wire]] = t.v.le32[data[wire] + 4] != 0
        # The next field starts on a 32-bit boundary from the header's start when aligned
        # (the header is, so padding the field's end to 4 is the same thing).
        after = data + size
        at[walk] = np.where(aligned[walk], p[walk] + ((after - p[walk] + 3) & ~3), after)
        walk = walk[inside & (at[walk] < end[walk])]
    fits[walk] = False  # still walking after MAX_FIELDS fields
    return fcs, damaged, fits


register(NS.LINKTYPE, 192, "ppi", from_linktype)  # LINKTYPE_PPI
