"""The dispatch table: (namespace, key) -> decoder, kept apart from the decoding logic.

Each protocol module ends with its `register(...)` lines; `netsleuth.decode` imports a
literal list of those modules. `Registry.snapshot()` lists every binding so a test can pin
the whole table and a protocol that falls out fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import NS, NS_SIZES, PacketTable, Tunnel

Decoder = Callable[[PacketTable, NDArray[np.int64]], None]
# Which packets' next bytes are plausibly this protocol: for bindings on a hint rather than
# a promise (a UDP port, RFC 6335 section 5: any application may use any port), so a header
# that does not validate ends the descent quietly, before a tunnel is entered or counted.
Accept = Callable[[PacketTable, NDArray[np.int64]], NDArray[np.bool_]]


@dataclass(frozen=True, slots=True)
class Binding:
    ns: NS
    key: int
    name: str  # protocol name, for the snapshot and for humans
    decoder: Decoder
    tunnel: Tunnel  # NONE, or the tunnel kind entered by following this binding
    accept: Accept | None = None  # None: the key is a promise (an EtherType, IP protocol)


class Registry:
    def __init__(self) -> None:
        self.bindings: list[Binding] = []
        self._flat: NDArray[np.int16] | None = None

    def register(
        self,
        ns: NS,
        key: int,
        name: str,
        decoder: Decoder,
        *,
        tunnel: Tunnel = Tunnel.NONE,
        accept: Accept | None = None,
    ) -> None:
        if not 0 <= key < NS_SIZES[ns]:
            raise ValueError(f"key {key:#x} outside namespace {ns.name}")
        for b in self.bindings:
            if b.ns == ns and b.key == key:
                raise ValueError(f"{ns.name} {key:#x} already bound to {b.name}")
        self.bindings.append(Binding(ns, key, name, decoder, tunnel, accept))
        self._flat = None

    def flat_table(self) -> NDArray[np.int16]:
        """One dense lookup array: (namespace << 16 | key) -> 1-based binding index, 0 for
        unbound. Every namespace's keys fit in 16 bits (checked in register())."""
        if self._flat is None:
            flat = np.zeros(len(NS) << 16, dtype=np.int16)
            for i, b in enumerate(self.bindings, start=1):
                flat[(int(b.ns) << 16) | b.key] = i
            self._flat = flat
        return self._flat

    def bound(self, ns: NS, keys: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Which of `keys` (each inside the namespace's 16 bits) have a decoder in `ns`."""
        found: NDArray[np.bool_] = self.flat_table()[(int(ns) << 16) | (keys & 0xFFFF)] != 0
        return found

    def snapshot(self) -> list[tuple[str, int, str, str]]:
        return sorted((b.ns.name, b.key, b.name, b.tunnel.name.lower()) for b in self.bindings)


REGISTRY = Registry()
register = REGISTRY.register
