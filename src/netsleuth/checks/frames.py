"""Counting flagged packets and remembering the smallest frame numbers, across batches."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.findings import MAX_FRAMES, Finding
from netsleuth.findings.catalogue import catalogue_finding


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
