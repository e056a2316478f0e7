"""Per-packet flow fields from a chosen IP layer: what a hash function gets to see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import PacketTable

PORT_PROTOS = (6, 17, 132)  # TCP, UDP, SCTP: the protocols whose ports hashes use


@dataclass(frozen=True)
class Fields:
    ver: NDArray[np.uint8]  # 0 when the packet has no IP layer
    src: NDArray[np.uint8]  # (n, 16): IPv4 in the first 4 bytes, network order
    dst: NDArray[np.uint8]
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
    cache: dict[str, Fields] = t.__dict__.setdefault("_steer_fields", {})
    if which not in cache:
        cache[which] = _compute(t, (t.nip >= 2) if which == "innermost" else None)
    return cache[which]


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

    ver = pick("ver")
    v4 = ver == 4
    src = _addresses(pick("src6"), pick("src4"), v4, rows, inner is None)
    dst = _addresses(pick("dst6"), pick("dst4"), v4, rows, inner is None)
    proto = pick("proto")
    has_ports = _PORT_PROTO[proto] & (pick("l4_off") != 0) & ~pick("is_frag")
    return Fields(ver, src, dst, proto, pick("sport"), pick("dport"), has_ports, pick("flow_label"))


def _addresses(
    a6: NDArray[np.uint8],
    a4: NDArray[np.uint32],
    v4: NDArray[np.bool_],
    rows: NDArray[np.int64] | None,
    shared: bool,
) -> NDArray[np.uint8]:
    """16-byte addresses: IPv6 as is, IPv4 in the first four bytes (network order), zeros
    after. An outer IPv4 layer never has IPv6 bytes; a deeper layer can hold a stale IPv6
    address under a later IPv4 header, so those rows are cleared first."""
    out = a6.copy() if shared else a6
    if rows is not None:
        stale = rows[v4[rows]]
        out[stale] = 0
    np.copyto(out.view(">u4")[:, 0], a4, where=v4)
    return out
