"""Packets and bytes per distinct 64-bit key: steer's flow table and its distinct-hash counts.

The hash table itself is `_tally.c`; this class owns its arrays and grows them (doubling,
so a capture's keys are re-indexed O(log keys) times). Memory is bounded by the distinct
keys, never by the packets.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.steering import _tally


class Tally:
    def __init__(self, capacity: int = 1 << 12) -> None:
        self.n = 0
        self.keys = np.zeros(capacity, dtype=np.uint64)
        self.packets = np.zeros(capacity, dtype=np.int64)
        self.bytes = np.zeros(capacity, dtype=np.int64)
        self.slots = np.full(2 * capacity, -1, dtype=np.int64)

    def __len__(self) -> int:
        return self.n

    def add(self, keys: NDArray[np.uint64], sizes: NDArray[np.integer]) -> NDArray[np.int64]:
        """Count one packet of `sizes[i]` bytes for each keys[i]; return the rows whose key
        was not seen before (in order), so the caller can record what the key stands for."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        sizes64 = np.ascontiguousarray(sizes, dtype=np.int64)
        if self.n + keys.shape[0] > self.keys.shape[0]:
            self._grow(self.n + keys.shape[0])
        rows = np.empty(keys.shape[0], dtype=np.int64)
        fresh = _tally.tally(
            keys, sizes64, self.slots, self.keys, self.packets, self.bytes, self.n, rows
        )
        self.n += fresh
        return rows[:fresh]

    def _grow(self, need: int) -> None:
        cap = self.keys.shape[0]
        while cap < need:
            cap *= 2
        for name in ("keys", "packets", "bytes"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        self.slots = np.full(2 * cap, -1, dtype=np.int64)
        _tally.reslot(self.keys, self.n, self.slots)
