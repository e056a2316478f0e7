"""Drop counts by (location, reason, protocol), for the whole run and per interval."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from netsleuth.drops.events import Drops
from netsleuth.drops.symbols import Kallsyms, Location
from netsleuth.ethertypes import protocol_name

Key = tuple[int, int, int]  # location address, reason number (-1: none), protocol

NO_REASON = 0xFFFF  # reason -1 (not recorded) in the packed key


def group(drops: Drops) -> Counter[Key]:
    """Counts per key. Packs (location index, reason, protocol) into one int64 so a single
    integer sort does the grouping (a structured-array np.unique costs ~1 us an event)."""
    if len(drops) == 0:
        return Counter()
    locs, loc_idx = np.unique(drops.location, return_inverse=True)
    reason = np.where(drops.reason < 0, NO_REASON, drops.reason & 0xFFFF)
    packed = (loc_idx.astype(np.int64) << 32) | (reason << 16) | drops.protocol.astype(np.int64)
    keys, counts = np.unique(packed, return_counts=True)
    out: Counter[Key] = Counter()
    for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
        r = (k >> 16) & 0xFFFF
        out[(int(locs[k >> 32]), -1 if r == NO_REASON else r, k & 0xFFFF)] = c
    return out


@dataclass(frozen=True, slots=True)
class DropGroup:
    address: int
    location: Location | None
    reason: str | None  # None: the kernel records no reason (before 5.17)
    protocol: int
    count: int
    per_second: float

    @property
    def where(self) -> str:
        return self.location.text if self.location else f"0x{self.address:x}"

    def to_json(self) -> dict[str, object]:
        return {
            "location": self.location.function if self.location else None,
            "offset": f"0x{self.location.offset:x}" if self.location else None,
            "address": f"0x{self.address:x}",
            "reason": self.reason,
            "protocol": self.protocol,
            "protocol_name": protocol_name(self.protocol),
            "count": self.count,
            "per_second": round(self.per_second, 3),
        }


def groups(
    counts: Counter[Key], seconds: float, symbols: Kallsyms, reason_names: dict[int, str]
) -> list[DropGroup]:
    """Rows for display, biggest first; `seconds` turns counts into rates."""
    items = counts.most_common()
    addrs = np.array([k[0] for k, _ in items], dtype=np.uint64)
    locs = symbols.resolve(addrs)
    out = []
    for ((addr, reason, proto), n), loc in zip(items, locs, strict=True):
        name = None if reason < 0 else reason_names.get(reason, f"reason {reason}")
        out.append(DropGroup(addr, loc, name, proto, n, n / seconds if seconds > 0 else 0.0))
    return out
