"""Per-packet flow fields from a chosen IP layer: what a hash function gets to see."""

from __future__ import annotations

from dataclasses import dataclass

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

    The outer and the innermost fields are computed once per table and cached on it; a
    mixed choice is one np.where over the two.
    """
    inner = use_inner & (t.nip >= 2)
    if not inner.any():
        return _cached(t, "outer")
    if inner.all() or bool(np.all(inner == (t.nip >= 2))):
        return _cached(t, "innermost")
    a, b = _cached(t, "outer"), _cached(t, "innermost")

    def mix(x: NDArray[np.generic], y: NDArray[np.generic]) -> NDArray[np.generic]:
        out: NDArray[np.generic] = np.where(inner if x.ndim == 1 else inner[:, None], y, x)
        return out

    parts = {k: mix(getattr(a, k), getattr(b, k)) for k in Fields.__dataclass_fields__}
    return Fields(**parts)  # type: ignore[arg-type]


def _cached(t: PacketTable, which: str) -> Fields:
    cache: dict[str, Fields] = t.__dict__.setdefault("_steer_fields", {})
    if which not in cache:
        cache[which] = _compute(
            t, (t.nip >= 2) if which == "innermost" else np.zeros(t.n, dtype=np.bool_)
        )
    return cache[which]


def _compute(t: PacketTable, inner: NDArray[np.bool_]) -> Fields:
    o, r = t.outer, t.inner_raw

    def pick(name: str) -> NDArray[np.generic]:
        a, b = getattr(o, name), getattr(r, name)
        mask = inner if a.ndim == 1 else inner[:, None]
        out: NDArray[np.generic] = np.where(mask, b, a)
        return out

    ver = pick("ver").astype(np.uint8)
    src = pick("src6").astype(np.uint8)
    dst = pick("dst6").astype(np.uint8)
    v4 = ver == 4
    if v4.any():
        src4 = pick("src4").astype(">u4").view(np.uint8).reshape(-1, 4)
        dst4 = pick("dst4").astype(">u4").view(np.uint8).reshape(-1, 4)
        src[v4] = 0
        dst[v4] = 0
        src[v4, :4] = src4[v4]
        dst[v4, :4] = dst4[v4]
    proto = pick("proto").astype(np.uint8)
    has_ports = (
        np.isin(proto, PORT_PROTOS) & (pick("l4_off") != 0) & ~pick("is_frag").astype(np.bool_)
    )
    return Fields(
        ver,
        src,
        dst,
        proto,
        pick("sport").astype(np.uint16),
        pick("dport").astype(np.uint16),
        has_ports,
        pick("flow_label").astype(np.uint32),
    )
