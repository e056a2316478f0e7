"""MACsec (IEEE 802.1AE, EtherType 0x88E5). The SecTAG after the EtherType: TCI/AN (V, ES,
SC, SCB, E, C, AN), short length, packet number, and an 8-byte SCI when SC is set (clause
9.3). With E and C clear the secure data is the frame's own type and payload in clear text
(integrity only), followed by a 16-byte ICV (clause 9.10; every standard cipher suite's
ICV is 16 bytes); with E set it is ciphertext, which ends decoding."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Shim

T_V, T_SC, T_E, T_C = 0x80, 0x20, 0x08, 0x04
SECTAG = 6  # after the EtherType, without the SCI
SCI_LEN = 8
ICV_LEN = 16


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.mark_shim(idx, Shim.MACSEC)
    idx = t.short(idx, SECTAG, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    tci = t.v.u8[p].astype(np.int64)
    badver = (tci & T_V) != 0  # version 0 only (clause 9.5)
    t.flag(idx[badver], Anomaly.TUNNEL_BAD_VERSION)
    idx, p, tci = idx[~badver], p[~badver], tci[~badver]
    hidden = (tci & (T_E | T_C)) != 0
    t.stop(idx[hidden])  # ciphertext (or modified text): nothing readable follows
    idx, p, tci = idx[~hidden], p[~hidden], tci[~hidden]
    tag = SECTAG + np.where((tci & T_SC) != 0, SCI_LEN, 0)
    short_len = (t.v.u8[p + 1] & 0x3F).astype(np.int64)
    # The secure data ends at the ICV; a short length (under 48) says where exactly.
    data_end = np.where(short_len != 0, p + tag + short_len, t.end[idx] - ICV_LEN)
    bad = data_end < p + tag + 2
    t.flag(idx[bad], Anomaly.L2_TRUNCATED)
    idx, p, tag, data_end = idx[~bad], p[~bad], tag[~bad], data_end[~bad]
    t.trim(idx, data_end)
    for size in (SECTAG, SECTAG + SCI_LEN):
        sel = tag == size
        ethernet.tag_then_type(t, idx[sel], size)


register(NS.ETHERTYPE, 0x88E5, "macsec", decode)
