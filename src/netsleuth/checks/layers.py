"""The IP layers a check looks at: the outer one for every packet, and the inner one
(inside a tunnel) only where a packet has a second IP layer."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import FLAG_MF, IPLayer, PacketTable


def ip_layers(t: PacketTable) -> Iterator[tuple[str, IPLayer, NDArray[np.bool_]]]:
    """(layer name, fields, which rows hold a header in that layer)."""
    yield "outer", t.outer, t.outer.ver != 0
    deep = t.nip >= 2
    if deep.any():
        yield "inner", t.inner_raw, deep & (t.inner_raw.ver != 0)


def cut_by_outer_fragment(t: PacketTable) -> NDArray[np.bool_]:
    """Tunnelled packets carried in an outer first fragment with more to follow: the inner
    packet continues in the next outer fragment, so it ends early here without being
    malformed (RFC 4459 section 3: fragmenting the outer packet is how most tunnels meet
    an MTU). Only the reassembled outer datagram holds the whole inner packet."""
    o = t.outer
    first: NDArray[np.bool_] = (
        o.is_frag & ((o.flags & FLAG_MF) != 0) & (o.frag_off == 0) & (t.tunnels > 0)
    )
    return first


# Linux cooked captures carry the packet type (PACKET_OUTGOING = 4, linux/if_packet.h):
# SLL at byte 0 (16 bits), SLL2 at byte 10 (8 bits) (pcap-linktype(7), LINKTYPE_LINUX_SLL
# and LINKTYPE_LINUX_SLL2).
PACKET_OUTGOING = 4
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 113, 276


def sent_by_capturing_host(t: PacketTable) -> NDArray[np.bool_]:
    """Packets the capturing host sent, where the capture says so: their checksums may
    be left for the NIC to fill (transmit checksum offload), so a capture taken on the
    host shows them zero or partial."""
    out = np.zeros(t.n, dtype=np.bool_)
    lt, caplen = t.batch.linktype, t.batch.caplen
    sll = np.flatnonzero((lt == LINKTYPE_LINUX_SLL) & (caplen >= 16))
    out[sll] = t.v.be16[t.start[sll]] == PACKET_OUTGOING
    sll2 = np.flatnonzero((lt == LINKTYPE_LINUX_SLL2) & (caplen >= 20))
    out[sll2] = t.batch.buf[t.start[sll2] + 10] == PACKET_OUTGOING
    return out
