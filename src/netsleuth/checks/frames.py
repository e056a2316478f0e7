"""Counting flagged packets and remembering the smallest frame numbers, across batches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from netsleuth.findings import MAX_FRAMES, Finding
from netsleuth.findings.catalogue import catalogue_finding

K = TypeVar("K", int, str)


def smallest(kept: list[int], frames: NDArray[np.int64] | list[int]) -> list[int]:
    """The MAX_FRAMES smallest of `kept` (sorted) and `frames`, as a sorted list.

    Order-independent, so partial runs merge exactly (a merge is union, sort, cut); a
    frame flagged twice is kept twice, as it is counted twice."""
    new = np.asarray(frames, dtype=np.int64)
    if new.shape[0] == 0:
        return kept
    if len(kept) >= MAX_FRAMES and int(new.min()) >= kept[-1]:
        return kept  # the common case once full: frames arrive in increasing order
    if new.shape[0] > MAX_FRAMES:
        new = np.partition(new, MAX_FRAMES - 1)[:MAX_FRAMES]
    return sorted([*kept, *new.tolist()])[:MAX_FRAMES]


SUMMARY_KINDS = 8  # kinds a finding's summary names (most seen first); the rest are counted
EVIDENCE_KINDS = 64  # kinds its evidence lists; the rest are counted


def most_seen(counts: Mapping[K, int]) -> list[tuple[K, int]]:
    """(kind, count), most seen first, ties by kind."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def kinds_line(ranked: list[tuple[K, int]], label: Callable[[K], str], other: str) -> str:
    """A summary's list of kinds (most_seen), each as label() names it ("LLDP (0x88cc)
    x2, ..."): at most SUMMARY_KINDS named, the rest counted ("and 60,868 other
    EtherTypes x193,480"). Random bytes on a link carry thousands of EtherTypes; a summary
    that named them all was 4.8 MB of JSON and 1.9 MB of text for 200k such frames."""
    line = ", ".join(f"{label(k)} x{n}" for k, n in ranked[:SUMMARY_KINDS])
    rest = ranked[SUMMARY_KINDS:]
    if rest:
        line += f", and {len(rest):,} other {other} x{sum(n for _, n in rest):,}"
    return line


def others(ranked: list[tuple[Any, int]]) -> dict[str, int]:
    """What evidence leaves out past EVIDENCE_KINDS: how many kinds, how many frames."""
    rest = ranked[EVIDENCE_KINDS:]
    return {"kinds": len(rest), "count": sum(n for _, n in rest)}


class FrameTally:
    """count + the MAX_FRAMES smallest frame numbers per key."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.frames: dict[str, list[int]] = {}

    def add(self, key: str, frames: NDArray[np.int64]) -> None:
        n = int(frames.shape[0])
        if n == 0:
            return
        self.count[key] = self.count.get(key, 0) + n
        self.frames[key] = smallest(self.frames.get(key, []), frames)

    def merge(self, other: FrameTally, frame_offset: int = 0) -> None:
        """Add another part's tally; its frame numbers are shifted by `frame_offset` (the
        records before its byte range)."""
        for key, n in other.count.items():
            self.count[key] = self.count.get(key, 0) + n
            shifted = [f + frame_offset for f in other.frames[key]]
            self.frames[key] = smallest(self.frames.get(key, []), shifted)

    def findings(self, evidence: dict[str, dict[str, Any]] | None = None) -> list[Finding]:
        """One catalogue finding per key: "id|layer", or a bare "id" (no layer)."""
        out = []
        for key, count in self.count.items():
            fid, _, layer = key.partition("|")
            out.append(
                catalogue_finding(
                    fid,
                    count,
                    tuple(self.frames[key]),
                    layer or None,
                    evidence=(evidence or {}).get(fid),
                )
            )
        return out
