"""IP fragment reassembly under the overlap policies of real stacks (pure, no I/O).

When fragments overlap, stacks disagree on whose bytes win; an IDS that picks another rule
than the host it protects can be evaded (Ptacek & Newsham 1998; Novak, "Target-Based
Fragmentation Reassembly", 2005). Each policy below decides, for a byte claimed by an earlier
fragment (`old`) and a newly arrived one (`new`), whether `new` overwrites it. The rules
reproduce the expected results of the Sturges/Novak test pattern (tests/test_reassembly.py).
Modern Linux (4.19, "ip: discard IPv4 datagrams with overlapping segments", after
FragmentSmack, CVE-2018-5391) and IPv6 stacks following RFC 5722 / RFC 8200 section 4.5
drop the whole datagram instead: policy "linux".
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from netsleuth.arrays import distinct


class Fragment(NamedTuple):
    """One fragment's place and bytes. A tuple, not a frozen dataclass: the trackers make
    one per fragment they hold, and a flood's worth of frozen-dataclass __init__ calls (an
    object.__setattr__ per field) cost twice as much."""

    offset: int  # bytes from the start of the fragmentable part
    data: bytes
    more: bool  # MF / M flag
    frame: int = 0

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


Rule = Callable[[Fragment, Fragment], bool]  # (new, old) -> does new overwrite old?

POLICIES: dict[str, Rule | None] = {
    "first": lambda new, old: False,
    "last": lambda new, old: True,
    # Favour the original unless the new fragment starts before it.
    "bsd": lambda new, old: new.offset < old.offset,
    # Favour the new fragment when it reaches past the original's end (the right edge);
    # Novak's HP JetDirect policy. No published expected string was available to check
    # this rule against, unlike the others.
    "bsd-right": lambda new, old: new.end > old.end,
    # Favour the new fragment unless it starts after the original (Linux before 4.19).
    "linux-legacy": lambda new, old: new.offset <= old.offset,
    # Favour the original unless the new one starts before it and ends after it.
    "windows": lambda new, old: new.offset < old.offset and new.end > old.end,
    # Like windows, but a new fragment ending exactly where the original ends also wins.
    "solaris": lambda new, old: new.offset < old.offset and new.end >= old.end,
    "linux": None,  # any overlap: the datagram is discarded
}


def _sign(a: int, b: int) -> int:
    return (a > b) - (a < b) + 1  # 0: less, 1: equal, 2: greater


def rule_table() -> list[int]:
    """Each policy that builds a payload (POLICIES' order, "linux" left out) as a 9-bit
    mask: bit 3 * sign(new.offset - old.offset) + sign(new.end - old.end), each sign
    0 (less), 1 (equal) or 2 (greater), is set where `new` overwrites `old`. Every rule
    above decides from those two comparisons alone; the compiled walk of the fragment
    audit (checks/_trains.c) applies them from this table, so the rules stay written
    once, here. Checked on two scales of spans, so a rule that looked at anything else
    fails here instead of deciding differently there."""
    masks = []
    for rule in POLICIES.values():
        if rule is None:
            continue
        mask = 0
        for scale in (1, 40):
            old = Fragment(8 * scale, bytes(8 * scale), more=True)
            got = 0
            for d_off in (-1, 0, 1):
                for d_end in (-1, 0, 1):
                    off, end = old.offset + d_off * scale, old.end + d_end * scale
                    bit = 3 * _sign(off, old.offset) + _sign(end, old.end)
                    got |= rule(Fragment(off, bytes(end - off), more=True), old) << bit
            if scale > 1 and got != mask:
                raise ValueError("an overlap rule decides from more than offsets and ends")
            mask = got
        masks.append(mask)
    return masks


def overlaps(frags: list[Fragment]) -> bool:
    spans = sorted((f.offset, f.end) for f in frags if f.data)
    return any(b[0] < a[1] for a, b in itertools.pairwise(spans))


def reassemble(frags: list[Fragment], policy: str) -> bytes | None:
    """The datagram's payload under `policy` (arrival order = list order); None when the
    policy discards it. Bytes no fragment covered are zero (holes are reported apart)."""
    rule = POLICIES[policy]
    if rule is None:
        return None if overlaps(frags) else reassemble(frags, "first")
    size = max((f.end for f in frags), default=0)
    out = np.zeros(size, dtype=np.uint8)
    owner = np.full(size, -1, dtype=np.int64)
    for i, new in enumerate(frags):
        if not new.data:
            continue
        span = slice(new.offset, new.end)
        cur = owner[span]
        take = cur < 0
        for j in distinct(cur[cur >= 0]):
            if rule(new, frags[int(j)]):
                take |= cur == j
        out[span][take] = np.frombuffer(new.data, dtype=np.uint8)[take]
        cur[take] = i
    return out.tobytes()


def policy_groups(frags: list[Fragment]) -> list[tuple[list[str], bytes | None]]:
    """Policies grouped by the identical payload they produce (one group: no conflict)."""
    groups: dict[bytes | None, list[str]] = {}
    for name in POLICIES:
        groups.setdefault(reassemble(frags, name), []).append(name)
    return [(names, data) for data, names in groups.items()]
