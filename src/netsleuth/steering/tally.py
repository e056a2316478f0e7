"""Packets and bytes per distinct 64-bit key (steer's flow table), or just the number of
distinct keys (its RSS and RPS hash counts).

The hash table itself is `_tally.c`; this class owns its arrays and grows them (doubling,
so a capture's keys are re-slotted O(log keys) times). Memory is bounded by the distinct
keys, never by the packets.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.steering import _tally


class Tally:
    def __init__(self, *, counts: bool = True, capacity: int = 1 << 12) -> None:
        self.n = 0
        self.counts = counts
        self.slots = np.zeros((2 * capacity, 2), dtype=np.uint64)  # (key, record + 1)
        self.packets = np.zeros(capacity if counts else 0, dtype=np.int64)
        self.bytes = np.zeros(capacity if counts else 0, dtype=np.int64)

    def __len__(self) -> int:
        return self.n

    def add(self, keys: NDArray[np.uint64], sizes: NDArray[np.integer]) -> NDArray[np.int64]:
        """Count one packet of `sizes[i]` bytes for each keys[i] (sizes are ignored for a
        distinct count); return the rows whose key was not seen before (in order), so the
        caller can record what the key stands for."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        need = self.n + keys.shape[0]
        if 2 * need > self.slots.shape[0]:
            self._grow(need)
        rows = np.empty(keys.shape[0], dtype=np.int64)
        if self.counts:
            sizes64 = np.ascontiguousarray(sizes, dtype=np.int64)
            fresh = _tally.tally(keys, sizes64, self.slots, self.n, self.packets, self.bytes, rows)
        else:
            fresh = _tally.tally(keys, None, self.slots, self.n, None, None, rows)
        self.n += fresh
        return rows[:fresh]

    def _grow(self, need: int) -> None:
        cap = self.slots.shape[0] // 2
        while cap < need:
            cap *= 2
        slots = np.zeros((2 * cap, 2), dtype=np.uint64)
        _tally.reslot(self.slots, slots)
        self.slots = slots
        if self.counts:
            for name in ("packets", "bytes"):
                new = np.zeros(cap, dtype=np.int64)
                new[: self.n] = getattr(self, name)[: self.n]
                setattr(self, name, new)

    def keys(self) -> NDArray[np.uint64]:
        """The distinct keys in first-seen order."""
        used = self.slots[self.slots[:, 1] != 0]
        out = np.empty(self.n, dtype=np.uint64)
        out[(used[:, 1] - np.uint64(1)).astype(np.int64)] = used[:, 0]
        return out
