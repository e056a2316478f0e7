"""Per-packet flow fields from a chosen IP layer: what a hash function gets to see.

Addresses are kept as 128-bit big-endian numbers in two uint64 halves (IPv4 in the low 32
bits of `lo`, `hi` zero): every comparison, ordering and hash is then a handful of 1-D
operations instead of work on 16-byte rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import IPLayer, PacketTable

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


def layer_fields(t: PacketTable, use_inner: NDArray[np.bool_]) -> Fields:
    """Fields of the innermost IP layer where use_inner (and one exists), else the outer.

    The outer and the innermost fields are computed once per table and cached on it; any
    other choice is computed for its mask.
    """
    inner = use_inner & (t.nip >= 2)
    if not inner.any():
        return _cached(t, "outer")
    if bool(np.array_equal(inner, t.nip >= 2)):
        return _cached(t, "innermost")
    return _compute(t, inner)


def _cached(t: PacketTable, which: str) -> Fields:
    key = f"steer.fields.{which}"
    got = t.derived.get(key)
    if not isinstance(got, Fields):
        got = _compute(t, (t.nip >= 2) if which == "innermost" else None)
        t.derived[key] = got
    return got


# IP protocols whose first four payload bytes are source and destination ports.
_PORT_PROTO = np.zeros(256, dtype=np.bool_)
_PORT_PROTO[list(PORT_PROTOS)] = True


def _compute(t: PacketTable, inner: NDArray[np.bool_] | None) -> Fields:
    """The outer layer's own arrays (no copy) when `inner` is None; otherwise copies with
    the rows of `inner` taken from the deeper layer."""
    o, r = t.outer, t.inner_raw
    rows = None if inner is None else np.flatnonzero(inner)

    def pick(name: str) -> NDArray[Any]:
        a: NDArray[Any] = getattr(o, name)
        if rows is None:
            return a
        out = a.copy()
        out[rows] = getattr(r, name)[rows]
        return out

    halves = list(_outer_halves(t))
    if rows is not None:
        halves = [h.copy() for h in halves]
        for h, part in zip(halves, _halves(r, rows), strict=True):
            h[rows] = part
    proto = pick("proto")
    has_ports = _PORT_PROTO[proto] & (pick("l4_off") != 0) & ~pick("is_frag")
    return Fields(
        pick("ver"),
        halves[0],
        halves[1],
        halves[2],
        halves[3],
        proto,
        pick("sport"),
        pick("dport"),
        has_ports,
        pick("flow_label"),
    )


def _outer_halves(t: PacketTable) -> tuple[U64, U64, U64, U64]:
    got = t.derived.get("steer.outer_halves")
    if got is None:
        got = _halves(t.outer, None)
        t.derived["steer.outer_halves"] = got
    return got  # type: ignore[return-value]


def _halves(layer: IPLayer, rows: NDArray[np.int64] | None) -> tuple[U64, U64, U64, U64]:
    """(src_hi, src_lo, dst_hi, dst_lo) of a layer's rows (all when rows is None). IPv4 rows
    take their 32-bit address whatever the IPv6 columns hold (a deeper layer can keep a stale
    IPv6 address under a later IPv4 header)."""
    sel = slice(None) if rows is None else rows
    v4 = layer.ver[sel] == 4
    out: list[U64] = []
    for a6, a4 in ((layer.src6, layer.src4), (layer.dst6, layer.dst4)):
        w = a6[sel].view(">u8")
        out.append(np.where(v4, np.uint64(0), w[:, 0]).astype(np.uint64))
        out.append(np.where(v4, a4[sel], w[:, 1]).astype(np.uint64))
    return out[0], out[1], out[2], out[3]


def be_bytes(values: NDArray[Any], width: int) -> list[NDArray[np.uint8]]:
    """The byte columns of an integer array in network order: one byte-swapping copy, then
    strided views (no further copies)."""
    raw = values.astype(f">u{width}").view(np.uint8).reshape(-1, width)
    return [raw[:, k] for k in range(width)]
