"""IEEE 802.2 LLC, SNAP (RFC 1042) and the Spanning Tree BPDU behind LLC SAP 0x42.

These are the frames of incident 2: 802.3 length frames whose LLC DSAP/SSAP 0x42 carry
(R/M)STP BPDUs, which a Linux host that is not a bridge has no handler for.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable

SAP_SNAP = 0xAA
SAP_STP = 0x42  # IEEE 802.1D bridge spanning tree protocol
BPDU_MIN = 4  # protocol id (2), version (1), BPDU type (1): IEEE 802.1Q-2018 clause 14
OUI_8021 = 0x0080C2  # IEEE 802.1: RFC 2684's bridged PDUs
PID_ETH_FCS, PID_ETH = 0x0001, 0x0007  # 802.3 with its LAN FCS kept, and without
BRIDGED_PAD = 2  # RFC 2684 section 5.2: 0x00-00 before the destination MAC
FCS = 4
Mask = NDArray[np.bool_]


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 3, Anomaly.LLC_TRUNCATED)
    p = t.pos[idx]
    dsap = t.v.u8[p]
    ssap = t.v.u8[p + 1]
    ctrl = t.v.u8[p + 2]
    t.llc_dsap[idx] = dsap
    t.llc_ssap[idx] = ssap
    t.llc_ctrl[idx] = ctrl
    # U-format PDUs have a 1-byte control field (low bits 11); I and S formats have 2.
    hlen = np.where((ctrl & 3) == 3, 3, 4)
    snap = (dsap == SAP_SNAP) & (ssap == SAP_SNAP)
    stp = (dsap == SAP_STP) & (ssap == SAP_STP)
    t.stop(idx[~snap & ~stp])
    _snap(t, idx[snap], p[snap] + hlen[snap])
    _bpdu(t, idx[stp], p[stp] + hlen[stp])


def _snap(t: PacketTable, idx: NDArray[np.int64], at: NDArray[np.int64]) -> None:
    ok = at + 5 <= t.end[idx]
    t.flag(idx[~ok], Anomaly.LLC_TRUNCATED)
    idx, at = idx[ok], at[ok]
    oui = (t.v.be32[at] >> 8).astype(np.int64)
    typ = t.v.be16[at + 3]
    t.snap_type[idx] = typ
    # OUI 00-00-00: the type is an EtherType (RFC 1042). OUI 00-80-C2 with PID 1 or 7: a
    # bridged Ethernet frame (RFC 2684 section 5.2, PPPoE over ATM DSL), behind 2 bytes
    # of pad and, for PID 1, ending in its FCS. Other OUIs (Cisco CDP...) end here.
    enc = oui == 0
    bridged = (oui == OUI_8021) & ((typ == PID_ETH_FCS) | (typ == PID_ETH))
    t.stop(idx[~enc & ~bridged])
    e = idx[enc]
    t.ethertype[e] = typ[enc]
    t.hand_on(e, at[enc] + 5, NS.ETHERTYPE, typ[enc].astype(np.int64))
    _bridged(t, idx[bridged], at[bridged] + 5 + BRIDGED_PAD, typ[bridged] == PID_ETH_FCS)


def _bridged(t: PacketTable, idx: NDArray[np.int64], frame: NDArray[np.int64], fcs: Mask) -> None:
    """RFC 2684 bridged Ethernet: the frame (and its FCS, which is not payload)."""
    room = frame + np.where(fcs, FCS, 0) <= t.wend[idx]
    t.flag(idx[~room], Anomaly.LLC_TRUNCATED)
    idx, frame, fcs = idx[room], frame[room], fcs[room]
    t.trim(idx[fcs], t.wend[idx[fcs]] - FCS)
    t.hand_on(idx, frame, NS.FRAME, FrameKey.ETHERNET)


def _bpdu(t: PacketTable, idx: NDArray[np.int64], at: NDArray[np.int64]) -> None:
    ok = at + BPDU_MIN <= t.end[idx]
    t.flag(idx[~ok], Anomaly.LLC_TRUNCATED)
    idx, at = idx[ok], at[ok]
    t.stp_version[idx] = t.v.u8[at + 2]
    t.stp_type[idx] = t.v.u8[at + 3]
    t.stop(idx)


register(NS.FRAME, FrameKey.LLC, "llc", decode)
