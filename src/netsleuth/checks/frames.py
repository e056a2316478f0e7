"""Counting flagged packets and remembering the first frame numbers, across batches."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.checks.catalogue import catalogue_finding
from netsleuth.model import MAX_FRAMES, Finding


class FrameTally:
    """count + first MAX_FRAMES frame numbers per key."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.frames: dict[str, list[int]] = {}

    def add(self, key: str, frames: NDArray[np.int64]) -> None:
        n = int(frames.shape[0])
        if n == 0:
            return
        self.count[key] = self.count.get(key, 0) + n
        kept = self.frames.setdefault(key, [])
        room = MAX_FRAMES - len(kept)
        if room > 0:
            kept.extend(int(f) for f in frames[:room])

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
