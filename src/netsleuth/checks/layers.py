"""The IP layers a check looks at: the outer one for every packet, and the inner one
(inside a tunnel) only where a packet has a second IP layer."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import IPLayer, PacketTable


def ip_layers(t: PacketTable) -> Iterator[tuple[str, IPLayer, NDArray[np.bool_]]]:
    """(layer name, fields, which rows hold a header in that layer)."""
    yield "outer", t.outer, t.outer.ver != 0
    deep = t.nip >= 2
    if deep.any():
        yield "inner", t.inner_raw, deep & (t.inner_raw.ver != 0)
