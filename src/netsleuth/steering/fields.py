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


@dataclass
class FieldCache:
    """Steering's per-batch column cache: the outer and the innermost flow fields of one
    decoded table, each computed at most once however many models read it (`steer
    --compare` runs seven on every batch). Steering creates one for each table it observes
    and drops it with the table; the decode table itself carries nothing for later stages."""

    table: PacketTable
    deep: NDArray[np.bool_]  # packets with a second IP layer (whose innermost is inner_raw)
    outer: Fields | None = None
    innermost: Fields | None = None

    @classmethod
    def of(cls, t: PacketTable) -> FieldCache:
        return cls(t, t.nip >= 2)


def layer_fields(
    t: PacketTable, use_inner: NDArray[np.bool_], cache: FieldCache | None = None
) -> Fields:
    """Fields of the innermost IP layer where use_inner (and one exists), else the outer.

    The outer and the innermost fields are kept in `cache` (the batch's, from steering's
    loop; a fresh one when called on a table alone); any other choice is computed for its
    mask.
    """
    c = FieldCache.of(t) if cache is None else cache
    if c.table is not t:
        raise ValueError("a FieldCache serves the table it was made for")
    inner = use_inner & c.deep
    if not inner.any():
        if c.outer is None:
            c.outer = select(t, np.zeros(t.n, dtype=np.bool_))
        return c.outer
    if bool(np.array_equal(inner, c.deep)):
        if c.innermost is None:
            c.innermost = select(t, c.deep)
        return c.innermost
    return select(t, inner)


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
