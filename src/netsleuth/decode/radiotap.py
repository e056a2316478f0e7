"""Radiotap (LINKTYPE_IEEE802_11_RADIOTAP, 127): the radio's metadata in front of an 802.11
frame, as Linux's mac80211 and most Wi-Fi drivers write it in monitor mode.

The header (radiotap.org, "Radiotap header"; Linux include/net/ieee80211_radiotap.h) is
it_version (0), a pad byte, it_len (little-endian: the whole header's length) and a chain
of 32-bit present words, each with bit 31 set when another follows. The fields come next,
each aligned to its own size from the header's start. Only one field matters to decoding,
and it is always in the first (radiotap-namespace) word: Flags (bit 1), one byte, after
TSFT (bit 0, 8 bytes) when that is present:
- 0x10, F_FCS: the frame ends with its 4-byte FCS, which is not payload;
- 0x20, F_DATAPAD: the 802.11 header is padded to a multiple of 4 bytes;
- 0x40, F_BADFCS: the frame failed its FCS check. Its bytes were damaged in the air: it is
  counted, but not decoded past the radiotap header, so garbled headers raise no finding.
A record with the 0-length-PSDU field (bit 26) holds no frame at all; it is counted too.
Fields after Flags are not read, nor checked against the header's length.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ieee80211
from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, PacketTable

HDR = 8  # version, pad, length, the first present word
FCS = 4
EXT = 1 << 31  # another present word follows
TSFT, FLAGS = 1 << 0, 1 << 1
NO_PSDU = 1 << 26  # 0-length-PSDU (radiotap.org defined fields)
F_FCS, F_DATAPAD, F_BADFCS = 0x10, 0x20, 0x40
# Present words a header may chain: real ones use a handful (one per namespace and
# extension); the bound keeps a hostile header from costing a loop step per 4 bytes.
MAX_WORDS = 64


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.IEEE80211
    idx = t.short(idx, HDR, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    length = t.v.le16[p + 2].astype(np.int64)
    bad = (t.v.u8[p] != 0) | (length < HDR) | (p + length > t.wend[idx])
    t.flag(idx[bad], Anomaly.BAD_PSEUDO_HEADER)
    idx = t.short(idx[~bad], length[~bad], Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    end = p + t.v.le16[p + 2].astype(np.int64)
    flags, fits = _flags(t, p, end)
    fcs = (flags & F_FCS) != 0
    fits &= ~fcs | (end + FCS <= t.wend[idx])  # room for the FCS after the header
    t.flag(idx[~fits], Anomaly.BAD_PSEUDO_HEADER)
    idx, end, flags, fcs = idx[fits], end[fits], flags[fits], fcs[fits]
    t.trim(idx[fcs], t.wend[idx[fcs]] - FCS)
    # Nothing to decode behind the header: a damaged frame (F_BADFCS), or none at all (bit
    # 26, 0-length-PSDU: the radio heard a frame, a sounding NDP say, and kept no byte).
    no_frame = ((flags & F_BADFCS) != 0) | ((t.v.le32[t.pos[idx] + 4] & NO_PSDU) != 0)
    t.stop(idx[no_frame])
    keep = ~no_frame
    idx = idx[keep]
    t.pos[idx] = end[keep]
    ieee80211.frame(t, idx, (flags[keep] & F_DATAPAD) != 0)


def _flags(
    t: PacketTable, p: NDArray[np.int64], end: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Each header's Flags byte (0 when absent) and whether its present words and the
    fields up to Flags fit inside its length."""
    present = t.v.le32[p + 4]
    fits = np.ones(p.shape[0], dtype=np.bool_)
    at = p + HDR  # after the present words: where the fields start
    more = np.flatnonzero(present & EXT)
    for _ in range(MAX_WORDS):
        if more.shape[0] == 0:
            break
        inside = at[more] + 4 <= end[more]
        fits[more[~inside]] = False
        more = more[inside]
        word = t.v.le32[at[more]]
        at[more] += 4
        more = more[(word & EXT) != 0]
    fits[more] = False  # still chaining after MAX_WORDS words
    tsft = (present & TSFT) != 0
    field = np.where(tsft, p + ((at - p + 7) & ~7) + 8, at)
    has = ((present & FLAGS) != 0) & fits
    fits &= ~has | (field < end)
    has &= fits
    flags = np.zeros(p.shape[0], dtype=np.int64)
    flags[has] = t.v.u8[field[has]]
    return flags, fits


register(NS.LINKTYPE, 127, "radiotap", from_linktype)  # LINKTYPE_IEEE802_11_RADIOTAP
