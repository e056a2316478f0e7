"""IEEE 802.11 MAC frames, as a monitor-mode capture holds them (LINKTYPE_IEEE802_11, 105,
and behind a radiotap header, radiotap.py).

Only data frames carry a packet. Their MAC header (IEEE 802.11-2020 section 9.3.2.1) is
frame control, duration, three addresses and sequence control (24 bytes), a fourth address
when both To DS and From DS are set (a wireless distribution system, mesh), the QoS Control
field in the QoS subtypes (subtype bit 3, section 9.2.4.1.3) and the HT Control field when
a QoS data frame has the +HTC/Order bit (section 9.2.4.1.10). The body then starts with an
802.2 LLC/SNAP header (RFC 1042) naming the EtherType, as Linux's mac80211 strips it
(net/wireless/util.c ieee80211_data_to_8023_exthdr).

Where netsleuth stops, and why:
- management, control and extension frames: no packet inside;
- the "no data" subtypes (Null, QoS Null, CF-Ack/Poll: subtype bit 2);
- protected frames (WEP, TKIP, CCMP, GCMP): the body is ciphertext;
- 802.11 fragments (More Fragments, or a fragment number above 0): the body is a piece of
  an MSDU, and its first piece's IP header would say a length the frame cannot hold
  (tshark, with wlan.defragment off, shows such bodies as data too);
- A-MSDUs (QoS Control bit 7): the first subframe's packet is decoded (its DA, SA and
  length header, section 9.3.2.2.2), the later subframes are not;
- a four-address QoS frame with the Mesh Control Present bit (section 9.2.4.5.12): the
  bit means a mesh control field only inside a mesh BSS, which the frame alone does not
  say. Outside one, QoS Control's second byte is a TXOP limit or a queue size, so the bit
  is ignored in three-address frames; a mesh's group-addressed frames (three addresses,
  From DS) then read as an LLC header that is not SNAP, and decoding ends there.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, Anomaly, FrameKey, PacketTable

Mask = NDArray[np.bool_]

# The shortest frame: ACK and CTS (frame control, duration, receiver address).
MIN_FRAME = 10
HDR = 24  # frame control, duration, addresses 1-3, sequence control
ADDR = 6
QOS = 2
HTC = 4
SUBFRAME = 14  # an A-MSDU subframe header: DA, SA, length (big-endian)

TYPE_DATA = 2
SUBTYPE_QOS = 0x8
SUBTYPE_NO_DATA = 0x4
# Frame control, second byte (section 9.2.4.1.1).
TO_DS, FROM_DS, MORE_FRAGMENTS, PROTECTED, ORDER = 0x01, 0x02, 0x04, 0x40, 0x80
QOS_A_MSDU = 0x80  # QoS Control bit 7
QOS_MESH = 0x01  # QoS Control bit 8, in its second byte


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.IEEE80211
    frame(t, idx, None)


def frame(t: PacketTable, idx: NDArray[np.int64], pad: Mask | None) -> None:
    """The 802.11 frame at the cursor of `idx`; `pad` (aligned with idx, or None) marks the
    frames whose header a radiotap Flags field says is padded to 4 bytes."""
    ok = t.fits(idx, MIN_FRAME)
    t.flag(idx[~ok], Anomaly.L2_TRUNCATED)
    idx, pad = idx[ok], None if pad is None else pad[ok]
    p = t.pos[idx]
    fc0 = t.v.u8[p]
    fc1 = t.v.u8[p + 1]
    subtype = fc0 >> 4
    data = ((fc0 & 3) == 0) & (((fc0 >> 2) & 3) == TYPE_DATA)
    data &= (subtype & SUBTYPE_NO_DATA) == 0
    data &= (fc1 & PROTECTED) == 0
    t.stop(idx[~data])
    idx, p, fc1, subtype = idx[data], p[data], fc1[data], subtype[data]
    pad = None if pad is None else pad[data]
    qos = (subtype & SUBTYPE_QOS) != 0
    four = (fc1 & (TO_DS | FROM_DS)) == (TO_DS | FROM_DS)
    qos_at = HDR + ADDR * four
    hlen = qos_at + QOS * qos + HTC * (qos & ((fc1 & ORDER) != 0))
    if pad is not None:  # radiotap F_DATAPAD: the body starts on a 4-byte boundary
        hlen = np.where(pad, (hlen + 3) & ~3, hlen)
    have = t.fits(idx, hlen)
    t.flag(idx[~have], Anomaly.L2_TRUNCATED)
    idx, p, fc1, hlen = idx[have], p[have], fc1[have], hlen[have]
    qos, four, qos_at = qos[have], four[have], qos_at[have]
    whole = ((fc1 & MORE_FRAGMENTS) == 0) & ((t.v.le16[p + 22] & 0xF) == 0)
    qos0 = np.zeros(idx.shape[0], dtype=np.uint8)
    qos1 = np.zeros(idx.shape[0], dtype=np.uint8)
    qos0[qos] = t.v.u8[p[qos] + qos_at[qos]]
    qos1[qos] = t.v.u8[p[qos] + qos_at[qos] + 1]
    whole &= ~four | ((qos1 & QOS_MESH) == 0)
    body = p + hlen
    whole &= body < t.end[idx]  # an empty body (on the wire or cut) has nothing to decode
    t.stop(idx[~whole])
    idx, body, amsdu = idx[whole], body[whole], (qos0[whole] & QOS_A_MSDU) != 0
    t.hand_on(idx[~amsdu], body[~amsdu], NS.FRAME, FrameKey.LLC)
    _first_subframe(t, idx[amsdu], body[amsdu])


def _first_subframe(t: PacketTable, idx: NDArray[np.int64], at: NDArray[np.int64]) -> None:
    """An A-MSDU's first subframe: DA, SA, a length, then the LLC header and packet."""
    if idx.shape[0] == 0:
        return
    t.pos[idx] = at
    idx = t.short(idx, SUBFRAME, Anomaly.L2_TRUNCATED)
    at = t.pos[idx]
    end = at + SUBFRAME + t.v.be16[at + 12].astype(np.int64)
    over = end > t.wend[idx]
    t.flag(idx[over], Anomaly.L2_BAD_LENGTH)
    keep = ~over
    idx, at, end = idx[keep], at[keep], end[keep]
    t.trim(idx, end)
    t.hand_on(idx, at + SUBFRAME, NS.FRAME, FrameKey.LLC)


register(NS.LINKTYPE, 105, "ieee80211", from_linktype)  # LINKTYPE_IEEE802_11
