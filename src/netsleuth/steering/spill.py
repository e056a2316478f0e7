"""Exact counting in bounded memory: hash tables that spill to sorted runs on disk.

`steer` counts distinct flows (with packets and bytes each) and distinct RSS/RPS hashes.
In memory, each table grows with the distinct keys: 5M flows cost 1.9 GB, 4.5 GB with
--compare (seven models, two hash tables each). Here each table holds at most `limit` keys
(tally.py, the fast path); when full, its contents are written as one run, sorted by a
mixed key, to a temporary directory, and the table starts again. At the end the runs are
read back one key range at a time (every run is sorted, so each range is a contiguous slice
of each run) and merged exactly: a key's counts are summed across runs, distinct keys are
counted once. Nothing is approximated: the answers equal the all-in-memory ones, and the
heaviest flows are the exact top by packets.

Memory: the live tables (limit keys each) plus one key range at a time (RANGE_RECORDS
records). Disk: about what the tables would have held in memory, in the temporary directory,
which is removed when the run ends however it ends (SpillDir is a context manager; SIGTERM
unwinds through it: cliutil.install_signals).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from types import TracebackType

import numpy as np
from numpy.typing import NDArray

from netsleuth.steering.tally import Tally

# An odd multiplier is a bijection on 64-bit words: mixed keys stay distinct, and 32-bit
# hashes spread over the top bits that choose a key range (2^64 / golden ratio).
MIX = np.uint64(0x9E3779B97F4A7C15)
RANGE_RECORDS = 1 << 17  # records merged at once, on average
KEY_LIMIT = 1 << 17  # distinct hashes held in memory per table (4 MiB of slots)
FLOW_LIMIT = 1 << 18  # flows held in memory (8 MiB of slots, 4 MiB of counts, 15 MiB of fields)


def mix(keys: NDArray[np.uint64]) -> NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        return keys * MIX


class SpillDir:
    """The temporary directory of one command's runs, created at the first spill only."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.count = 0

    def new_file(self) -> str:
        if self.path is None:
            self.path = tempfile.mkdtemp(prefix=f"netsleuth-steer-{os.getpid()}-")
        self.count += 1
        return os.path.join(self.path, f"run-{self.count}")

    def close(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None

    def __enter__(self) -> SpillDir:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Runs:
    """Record arrays written sorted by their "k" field, read back one range of k at a time."""

    def __init__(self, spill: SpillDir, dtype: np.dtype[np.void]) -> None:
        self.spill = spill
        self.dtype = dtype
        self.files: list[tuple[str, int]] = []

    def __len__(self) -> int:
        return sum(n for _, n in self.files)

    def write(self, rec: NDArray[np.void]) -> None:
        path = self.spill.new_file()
        rec[np.argsort(rec["k"], kind="stable")].tofile(path)
        self.files.append((path, rec.shape[0]))

    def ranges(self) -> Iterator[NDArray[np.void]]:
        """The records of every run, one range of k at a time, in run order within a range
        (so the first record of a key is its earliest)."""
        parts = 1
        while parts * RANGE_RECORDS < len(self):
            parts *= 2
        step = (1 << 64) // parts
        bounds = np.array([i * step for i in range(1, parts)], dtype=np.uint64)
        cuts = []
        for path, n in self.files:
            mm = np.memmap(path, dtype=self.dtype, mode="r", shape=(n,))
            cuts.append(np.concatenate(([0], np.searchsorted(mm["k"], bounds), [n])))
            del mm
        for p in range(parts):
            pieces = []
            for (path, _), cut in zip(self.files, cuts, strict=True):
                lo, hi = int(cut[p]), int(cut[p + 1])
                if hi > lo:
                    pieces.append(
                        np.fromfile(
                            path, dtype=self.dtype, count=hi - lo, offset=lo * self.dtype.itemsize
                        )
                    )
            if pieces:
                yield np.concatenate(pieces)


KEY = np.dtype([("k", "<u8")])


class DistinctKeys:
    """How many distinct 64-bit keys were added: exact, in bounded memory."""

    def __init__(self, spill: SpillDir, limit: int = KEY_LIMIT) -> None:
        self.limit = limit
        self.tally = Tally(counts=False)
        self.runs = Runs(spill, KEY)

    def add(self, keys: NDArray[np.uint64]) -> None:
        if len(self.tally) + keys.shape[0] > self.limit and len(self.tally):
            self._spill()
        self.tally.add(keys, keys)

    def _spill(self) -> None:
        rec = np.zeros(len(self.tally), dtype=KEY)
        rec["k"] = mix(self.tally.keys())
        self.runs.write(rec)
        self.tally = Tally(counts=False)

    def count(self) -> int:
        if not self.runs.files:
            return len(self.tally)
        if len(self.tally):
            self._spill()
        return sum(_distinct(r["k"]) for r in self.runs.ranges())


def _distinct(keys: NDArray[np.uint64]) -> int:
    k = np.sort(keys)
    return int(np.count_nonzero(k[1:] != k[:-1])) + (1 if k.shape[0] else 0)
