"""Frame Relay (LINKTYPE_FRELAY, 107): a Q.922 address of 2 to 4 bytes (the EA bit, bit 0,
marks its last byte), then either RFC 2427 multiprotocol encapsulation (control 0x03, an
optional 0x00 pad, an NLPID: 0xCC IPv4, 0x8E IPv6, 0x80 SNAP) or Cisco's encapsulation
(a 2-byte EtherType straight after the address). A SNAP header with OUI 00-00-00 carries an
EtherType; OUI 00-80-C2 with PID 0x0001 or 0x0007 a bridged Ethernet frame (RFC 2427
section 5.2)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, FrameKey, PacketTable

UI = 0x03
NLPID_IPV4, NLPID_IPV6, NLPID_SNAP, NLPID_PAD = 0xCC, 0x8E, 0x80, 0x00
OUI_BRIDGED = 0x0080C2
PID_ETHERNET = (0x0001, 0x0007)  # with and without the FCS
MAX_ADDRESS = 4


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.FRELAY
    idx = t.short(idx, 2, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    alen = np.zeros(idx.shape[0], dtype=np.int64)
    for k in range(MAX_ADDRESS, 1, -1):  # the first byte with EA set ends the address
        ea = (t.v.u8[p + k - 1] & 1) == 1
        alen = np.where(ea & (p + k <= t.end[idx]), k, alen)
    ok = alen > 0
    t.flag(idx[~ok], Anomaly.L2_TRUNCATED)
    idx, at = idx[ok], (p + alen)[ok]
    fits = at + 2 <= t.end[idx]
    t.flag(idx[~fits], Anomaly.L2_TRUNCATED)
    idx, at = idx[fits], at[fits]
    ui = t.v.u8[at] == UI
    cisco = idx[~ui]
    typ = t.v.be16[at[~ui]]
    t.ethertype[cisco] = typ
    t.hand_on(cisco, at[~ui] + 2, NS.ETHERTYPE, typ.astype(np.int64))
    _multiprotocol(t, idx[ui], at[ui] + 1)


def _multiprotocol(t: PacketTable, idx: NDArray[np.int64], at: NDArray[np.int64]) -> None:
    at = at + (t.v.u8[at] == NLPID_PAD)
    nlpid = t.v.u8[at]
    for value, et in ((NLPID_IPV4, 0x0800), (NLPID_IPV6, 0x86DD)):
        sel = nlpid == value
        t.ethertype[idx[sel]] = et
        t.hand_on(idx[sel], at[sel] + 1, NS.ETHERTYPE, et)
    snap = (nlpid == NLPID_SNAP) & (at + 6 <= t.end[idx])
    s, sat = idx[snap], at[snap] + 1
    oui = (t.v.be32[sat] >> 8).astype(np.int64)
    pid = t.v.be16[sat + 3].astype(np.int64)
    enc = oui == 0
    t.ethertype[s[enc]] = pid[enc]
    t.hand_on(s[enc], sat[enc] + 5, NS.ETHERTYPE, pid[enc])
    bridged = (oui == OUI_BRIDGED) & np.isin(pid, PID_ETHERNET)
    t.hand_on(s[bridged], sat[bridged] + 5, NS.FRAME, FrameKey.ETHERNET)
    handled = np.isin(nlpid, (NLPID_IPV4, NLPID_IPV6))
    handled[np.flatnonzero(snap)[enc | bridged]] = True
    t.stop(idx[~handled])


register(NS.LINKTYPE, 107, "frame-relay", from_linktype)  # LINKTYPE_FRELAY
