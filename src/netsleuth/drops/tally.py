"""Drop counts by (location, reason, protocol), for the whole run and per interval."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from netsleuth.drops.events import Drops
from netsleuth.drops.symbols import Kallsyms, Location
from netsleuth.ethertypes import protocol_name

Key = tuple[int, int, int]  # location address, reason number (-1: none), protocol

_KEY = np.dtype([("loc", np.uint64), ("reason", np.int64), ("proto", np.uint16)])


def group(drops: Drops) -> Counter[Key]:
    if len(drops) == 0:
        return Counter()
    keys = np.empty(len(drops), dtype=_KEY)
    keys["loc"], keys["reason"], keys["proto"] = drops.location, drops.reason, drops.protocol
    uniq, counts = np.unique(keys, return_counts=True)
    out: Counter[Key] = Counter()
    for u, c in zip(uniq.tolist(), counts.tolist(), strict=True):
        out[(int(u[0]), int(u[1]), int(u[2]))] = int(c)
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
