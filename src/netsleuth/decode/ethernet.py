"""Ethernet II and IEEE 802.3 framing (IEEE 802.3 clause 3.2.6: a type/length field of at
most 1500 is a length and an LLC header follows; 1536 and above is an EtherType)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import ETH_HLEN, L2, NS, Anomaly, FrameKey, PacketTable

MAX_LENGTH = 1500  # largest 802.3 length value
MIN_ETHERTYPE = 1536  # 0x0600; values 1501..1535 are neither


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, ETH_HLEN, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    typ = t.v.be16[p + 12]
    ether = typ >= MIN_ETHERTYPE
    e = idx[ether]
    t.ethertype[e] = typ[ether]
    t.hand_on(e, p[ether] + ETH_HLEN, NS.ETHERTYPE, typ[ether].astype(np.int64))
    length_field(t, idx[~ether], p[~ether] + ETH_HLEN, typ[~ether])


def length_field(
    t: PacketTable, idx: NDArray[np.int64], payload: NDArray[np.int64], length: NDArray[np.uint16]
) -> None:
    """An 802.3 length (after the MAC addresses or a VLAN tag): LLC follows, then padding."""
    if idx.shape[0] == 0:
        return
    bad = length > MAX_LENGTH
    t.flag(idx[bad], Anomaly.L2_BAD_LENGTH)
    ok = ~bad
    idx, payload, length = idx[ok], payload[ok], length[ok]
    outer = t.tunnels[idx] == 0
    t.l2[idx[outer & (t.l2[idx] == L2.ETHERNET)]] = L2.IEEE8023
    frame_end = payload + length.astype(np.int64)
    # A length running past the frame is malformed (not merely snapped: wend is the wire).
    over = frame_end > t.wend[idx]
    t.flag(idx[over], Anomaly.L2_BAD_LENGTH)
    keep = ~over
    t.trim(idx[keep], frame_end[keep])
    t.hand_on(idx[keep], payload[keep], NS.FRAME, FrameKey.LLC)


def tag_then_type(t: PacketTable, idx: NDArray[np.int64], tag_len: int) -> None:
    """A tag of `tag_len` bytes, then a type/length field, as after an 802.1Q TPID: the
    shape of VN-Tag and E-Tag."""
    idx = t.short(idx, tag_len + 2, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    typ = t.v.be16[p + tag_len]
    ether = typ >= MIN_ETHERTYPE
    e = idx[ether]
    t.ethertype[e] = typ[ether]
    t.hand_on(e, p[ether] + tag_len + 2, NS.ETHERTYPE, typ[ether].astype(np.int64))
    length_field(t, idx[~ether], p[~ether] + tag_len + 2, typ[~ether])


def from_linktype(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.l2[idx] = L2.ETHERNET
    decode(t, idx)


register(NS.LINKTYPE, 1, "ethernet", from_linktype)  # LINKTYPE_ETHERNET
register(NS.FRAME, FrameKey.ETHERNET, "ethernet", decode)
# Transparent Ethernet Bridging (RFC 1701 protocol type 0x6558): Ethernet inside GRE/Geneve.
register(NS.TUNNEL_PROTO, 0x6558, "ethernet-teb", decode)
