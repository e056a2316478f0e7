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
