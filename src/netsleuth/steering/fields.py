"""Per-packet flow fields from a chosen IP layer: what a hash function gets to see.

Addresses are kept as 128-bit big-endian numbers in two uint64 halves (IPv4 in the low 32
bits of `lo`, `hi` zero): every comparison, ordering and hash is then a handful of 1-D
operations instead of work on 16-byte rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import IPLayer, PacketTable, loop_column
from netsleuth.steering import _fields

PORT_PROTOS = (6, 17, 132)  # TCP, UDP, SCTP: the protocols whose ports hashes use

U64 = NDArray[np.uint64]


@dataclass(frozen=True)
class Fields:
    ver: NDArray[np.uint8]  # 0 when the packet has no IP layer
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    proto: NDArray[np.uint8]
    sport: NDArray[np.uint16]
    dport: NDArray[np.uint16]
    has_ports: NDArray[np.bool_]  # a transport header with ports, not a fragment
    flow_label: NDArray[np.uint32]

    def take(self, rows: NDArray[np.int64]) -> Fields:
        """The fields of these packets only."""
        return Fields(**{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)})


def layer_fields(t: PacketTable, use_inner: NDArray[np.bool_]) -> Fields:
    """Fields of the innermost IP layer where use_inner (and one exists), else the outer.

    The outer and the innermost fields are computed once per table and cached on it; any
    other choice is computed for its mask.
    """
    deep = _deep(t)
    inner = use_inner & deep
    if not inner.any():
        return _cached(t, "outer")
    if bool(np.array_equal(inner, deep)):
        return _cached(t, "innermost")
    return select(t, inner)


def _deep(t: PacketTable) -> NDArray[np.bool_]:
    """Packets with a second IP layer (whose innermost layer is inner_raw)."""
    got = t.derived.get("steer.deep")
    if not isinstance(got, np.ndarray):
        got = t.nip >= 2
        t.derived["steer.deep"] = got
    return got


def _cached(t: PacketTable, which: str) -> Fields:
    key = f"steer.fields.{which}"
    got = t.derived.get(key)
    if not isinstance(got, Fields):
        got = select(t, _deep(t) if which == "innermost" else np.zeros(t.n, dtype=np.bool_))
        t.derived[key] = got
    return got


# The layer columns _fields.c reads, in its order, with their dtypes.
_LAYER_IN: tuple[tuple[str, type[np.generic]], ...] = (
    ("ver", np.uint8),
    ("src4", np.uint32),
    ("dst4", np.uint32),
    ("src6", np.uint8),
    ("dst6", np.uint8),
    ("proto", np.uint8),
    ("sport", np.uint16),
    ("dport", np.uint16),
    ("l4_off", np.int32),
    ("is_frag", np.bool_),
    ("flow_label", np.uint32),
)
_OUT: tuple[type[np.generic], ...] = (
    np.uint8,
    np.uint64,
    np.uint64,
    np.uint64,
    np.uint64,
    np.uint8,
    np.uint16,
    np.uint16,
    np.bool_,
    np.uint32,
)


def select(t: PacketTable, inner: NDArray[np.bool_]) -> Fields:
    """inner_raw's fields where `inner`, the outer layer's elsewhere: one compiled pass
    (_fields.c) with the meaning of select_numpy()."""

    def cols(layer: IPLayer) -> tuple[NDArray[Any], ...]:
        return tuple(loop_column(getattr(layer, n), d, f"IPLayer.{n}") for n, d in _LAYER_IN)

    mask = np.ascontiguousarray(inner, dtype=np.bool_)
    res = tuple(np.empty(t.n, dtype=d) for d in _OUT)
    _fields.fields(cols(t.outer), cols(t.inner_raw), mask, res)
    return Fields(*res)


# IP protocols whose first four payload bytes are source and destination ports.
_PORT_PROTO = np.zeros(256, dtype=np.bool_)
_PORT_PROTO[list(PORT_PROTOS)] = True


def select_numpy(t: PacketTable, inner: NDArray[np.bool_]) -> Fields:
    """The definition of select(), in NumPy (the reference the tests hold it to)."""
    o, r = _whole(t.outer), _whole(t.inner_raw)
    return Fields(*(np.where(inner, getattr(r, k), getattr(o, k)) for k in FIELD_NAMES))


def _whole(layer: IPLayer) -> Fields:
    """One layer's fields for every row."""
    v4 = layer.ver == 4
    halves: list[U64] = []
    for a6, a4 in ((layer.src6, layer.src4), (layer.dst6, layer.dst4)):
        # IPv4 rows take their 32-bit address whatever the IPv6 columns hold (a deeper
        # layer can keep a stale IPv6 address under a later IPv4 header).
        w = a6.view(">u8")
        halves.append(np.where(v4, np.uint64(0), w[:, 0]).astype(np.uint64))
        halves.append(np.where(v4, a4, w[:, 1]).astype(np.uint64))
    has_ports = _PORT_PROTO[layer.proto] & (layer.l4_off != 0) & ~layer.is_frag
    return Fields(
        layer.ver,
        halves[0],
        halves[1],
        halves[2],
        halves[3],
        layer.proto,
        layer.sport,
        layer.dport,
        has_ports,
        layer.flow_label,
    )


FIELD_NAMES = tuple(Fields.__dataclass_fields__)  # the columns, in order


def be_bytes(values: NDArray[Any], width: int) -> list[NDArray[np.uint8]]:
    """The byte columns of an integer array in network order: one byte-swapping copy, then
    strided views (no further copies)."""
    raw = values.astype(f">u{width}").view(np.uint8).reshape(-1, width)
    return [raw[:, k] for k in range(width)]
