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
and SIGHUP unwind through it: cliutil.install_signals).
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
# A part's last table up to this many records goes back to steer's parent process as an
# array (with the part's other arrays: steering/parallel.py), a bigger one as a file of its
# own: a file a table cost ~1 ms to write and remove here, the bulk of a small input's time
# (the tcpdump corpus: 830 files).
SEAL_RECORDS = 1 << 14
MAX_HELD = 64  # arrays a table holds as runs before joining them


def mix(keys: NDArray[np.uint64]) -> NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        return keys * MIX


def limits() -> tuple[int, int]:
    """(flows, keys) a table holds in memory before it spills, read when a run starts (so a
    test can lower them, and steer's worker processes get the parent's: steering/parallel.py)."""
    return FLOW_LIMIT, KEY_LIMIT


class SpillDir:
    """The temporary directory of one command's runs, created at the first spill only.

    Under `root`, a folder someone else made (steer's parent process, for its workers'
    runs: steering/parallel.py), the directory is left on close: the root's owner removes
    it, after the runs have been merged."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root
        self.path: str | None = None
        self.count = 0

    def new_file(self) -> str:
        if self.path is None:
            self.path = tempfile.mkdtemp(prefix=f"netsleuth-steer-{os.getpid()}-", dir=self.root)
        self.count += 1
        return os.path.join(self.path, f"run-{self.count}")

    def close(self) -> None:
        if self.path is not None and self.root is None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None

    def __enter__(self) -> SpillDir:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Runs:
    """Record arrays sorted by their "k" field, read back one range of k at a time.

    A run is a file on disk or, when small (a part's last table, handed from a worker to
    the parent: steering/parallel.py), an array in memory; the arrays held stay below the
    table's own limit (past it, the consecutive ones are written out as one run)."""

    def __init__(self, spill: SpillDir, dtype: np.dtype[np.void], limit: int) -> None:
        self.spill = spill
        self.dtype = dtype
        self.limit = limit
        self.runs: list[str | NDArray[np.void]] = []  # in the order they were made
        self.sizes: list[int] = []

    def __len__(self) -> int:
        return sum(self.sizes)

    def __bool__(self) -> bool:
        return bool(self.runs)

    def write(self, rec: NDArray[np.void]) -> None:
        path = self.spill.new_file()
        rec[np.argsort(rec["k"], kind="stable")].tofile(path)
        self.runs.append(path)
        self.sizes.append(rec.shape[0])

    def keep(self, rec: NDArray[np.void]) -> None:
        """A run held in memory: for a table small enough to travel as it is."""
        self.runs.append(rec[np.argsort(rec["k"], kind="stable")])
        self.sizes.append(rec.shape[0])
        self._bound()

    def extend(self, other: Runs) -> None:
        """Take over another table's runs, after this one's: a key's earliest record stays
        first (ranges() reads runs in order). Its files stay where they are."""
        self.runs.extend(other.runs)
        self.sizes.extend(other.sizes)
        other.runs, other.sizes = [], []
        self._bound()

    def _bound(self) -> None:
        """Past the limit, write each stretch of consecutive arrays out as one run; past
        MAX_HELD arrays, join each stretch into one array (ranges() visits every run)."""
        held = [r.shape[0] for r in self.runs if not isinstance(r, str)]
        if sum(held) > self.limit:
            self._join(to_disk=True)
        elif len(held) > MAX_HELD:
            self._join(to_disk=False)

    def _join(self, *, to_disk: bool) -> None:
        """Each stretch of consecutive arrays as one run, sorted stably (within a key, the
        earlier run's records stay first)."""
        runs: list[str | NDArray[np.void]] = []
        sizes: list[int] = []
        stretch: list[NDArray[np.void]] = []
        for run, n in [*zip(self.runs, self.sizes, strict=True), ("", 0)]:  # "": the end
            if not isinstance(run, str):
                stretch.append(run)
                continue
            if stretch:
                joined = np.concatenate(stretch)
                joined = joined[np.argsort(joined["k"], kind="stable")]
                if to_disk:
                    path = self.spill.new_file()
                    joined.tofile(path)
                    runs.append(path)
                else:
                    runs.append(joined)
                sizes.append(joined.shape[0])
                stretch = []
            if run:
                runs.append(run)
                sizes.append(n)
        self.runs, self.sizes = runs, sizes

    def ranges(self) -> Iterator[NDArray[np.void]]:
        """The records of every run, one range of k at a time, in run order within a range
        (so the first record of a key is its earliest)."""
        parts = 1
        while parts * RANGE_RECORDS < len(self):
            parts *= 2
        step = (1 << 64) // parts
        bounds = np.array([i * step for i in range(1, parts)], dtype=np.uint64)
        cuts = [np.concatenate(([0], self._find(r, n, bounds), [n])) for r, n in self._sized()]
        for p in range(parts):
            pieces = []
            for (run, _), cut in zip(self._sized(), cuts, strict=True):
                lo, hi = int(cut[p]), int(cut[p + 1])
                if hi <= lo:
                    continue
                if isinstance(run, str):
                    at = lo * self.dtype.itemsize
                    pieces.append(np.fromfile(run, dtype=self.dtype, count=hi - lo, offset=at))
                else:
                    pieces.append(run[lo:hi])
            if pieces:
                yield np.concatenate(pieces)

    def _sized(self) -> list[tuple[str | NDArray[np.void], int]]:
        return list(zip(self.runs, self.sizes, strict=True))

    def _find(
        self, run: str | NDArray[np.void], n: int, bounds: NDArray[np.uint64]
    ) -> NDArray[np.intp]:
        """Where each bound falls in a run's keys."""
        if not isinstance(run, str):
            return np.searchsorted(run["k"], bounds)
        mm = np.memmap(run, dtype=self.dtype, mode="r", shape=(n,))
        try:
            return np.searchsorted(mm["k"], bounds)
        finally:
            del mm


KEY = np.dtype([("k", "<u8")])


class DistinctKeys:
    """How many distinct 64-bit keys were added: exact, in bounded memory."""

    def __init__(self, spill: SpillDir, limit: int | None = None) -> None:
        self.limit = KEY_LIMIT if limit is None else limit
        self.tally = Tally(counts=False)
        self.runs = Runs(spill, KEY, self.limit)

    def add(self, keys: NDArray[np.uint64]) -> None:
        if len(self.tally) + keys.shape[0] > self.limit and len(self.tally):
            self._spill()
        self.tally.add(keys, keys)

    def merge(self, other: DistinctKeys) -> None:
        """The union with another part's keys (its runs taken over, its table added)."""
        self.runs.extend(other.runs)
        if len(other.tally):
            self.add(other.tally.keys())

    def seal(self) -> None:
        """The table to a run (in memory if small, else on disk) and emptied: what a
        worker hands back."""
        if len(self.tally):
            self._spill(keep=len(self.tally) <= SEAL_RECORDS)
        self.tally = Tally(counts=False, capacity=1)

    def _spill(self, *, keep: bool = False) -> None:
        rec = np.zeros(len(self.tally), dtype=KEY)
        rec["k"] = mix(self.tally.keys())
        if keep:
            self.runs.keep(rec)
        else:
            self.runs.write(rec)
        self.tally = Tally(counts=False)

    def count(self) -> int:
        if not self.runs:
            return len(self.tally)
        if len(self.tally):
            self._spill(keep=True)
        return sum(_distinct(r["k"]) for r in self.runs.ranges())


def _distinct(keys: NDArray[np.uint64]) -> int:
    k = np.sort(keys)
    return int(np.count_nonzero(k[1:] != k[:-1])) + (1 if k.shape[0] else 0)
