"""Which jobs: a whole input per job, or record-aligned byte ranges of a large file, and
the order the workers take them in."""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from netsleuth.capture import open_capture
from netsleuth.capture.split import HEADER, layout, split_points
from netsleuth.capture.split_pcapng import Section, is_pcapng, range_starts
from netsleuth.errors import InputError
from netsleuth.pipeline import InputResult, tables

# A pcapng file's first range is this much larger than a pcap file's (head_share): the
# workers walk the blocks before their ranges first (capture/split_pcapng.py), ~0.17 s a GB
# beside ~0.9 s a GB of scanning. Measured on the 1M-packet mix as pcapng, two workers, the
# walk not yet known: a head of 45% 0.48-0.49 s, 50% 0.45-0.47 s, 55% 0.43-0.45 s, 60%
# 0.45-0.47 s.
PCAPNG_HEAD = 1.2
MIN_RANGE = 32 << 20  # smaller files are one job: splitting costs more than it gains
MAX_RANGE = 256 << 20  # bounds what a range's result holds


# ----- jobs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileJob:
    path: str
    depth: int


@dataclass(frozen=True)
class RangeJob:
    path: str
    depth: int
    header: bytes
    start: int
    end: int
    last: bool
    spill: str | None = None  # a folder for the result's arrays (handover.job_dir)
    # A pcapng range: `start` and `end` are targets, where the range is asked to start
    # and end; it reads from the first reader buffer that starts at or after `start` to
    # the first at or after `end` (capture/split_pcapng.py). A pcap range's are exact.
    pcapng: bool = False
    starts: str | None = None  # pcapng: a folder where the file's ranges tell their starts
    begins: tuple[int, Section] | None = None  # pcapng: its start, found already (located)


def sharing(job: Job, root: str) -> Job:
    """The job; a pcapng range telling and finding its file's range starts in a folder
    under `root` (the caller's, which every worker can read), one file a start."""
    if not isinstance(job, RangeJob) or not job.pcapng:
        return job
    name = hashlib.sha256(job.path.encode(errors="surrogateescape")).hexdigest()[:16]
    return replace(job, starts=os.path.join(root, "starts", name))


Job = FileJob | RangeJob


def first_range(job: RangeJob) -> bool:
    """Whether the range starts its file: at the pcap header's end, or at a pcapng
    file's first block."""
    return job.start == (0 if job.pcapng else HEADER)


def plan(
    paths: Sequence[str],
    depth: int,
    workers: int,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
    *,
    head: float | None = None,
    replays: bool = False,
) -> list[list[Job]]:
    """The jobs of each input, in order. Without `range_bytes` a file is cut into ranges
    only where whole files would leave a worker idle (_to_split); with it, every file
    larger than it is cut. `head`: the share of a file its first range takes, when the
    caller reads that range itself and replays the others' fragments too (scan_parallel);
    the rest is cut as before. `replays`: the caller replays each range's fragments
    (scan), so a file mostly of fragments stays whole (to_cut)."""
    sizes = {p: os.path.getsize(p) if os.path.isfile(p) else 0 for p in paths}
    split = to_cut(paths, workers, range_bytes, split_at, replays=replays)
    if range_bytes is None:
        share = math.ceil(sum(sizes.values()) / max(2 * workers, 1))
        range_bytes = min(max(share, MIN_RANGE), MAX_RANGE)
    out: list[list[Job]] = []
    for path, cut in zip(paths, split, strict=True):
        size = sizes[path]
        if split_at is not None and path in split_at:
            targets = split_at[path]
        elif cut and head is not None and size and (mine := _head_of(path, head)) is not None:
            first = int(size * mine)
            n = max(1, round((size - first) / range_bytes))
            targets = [first + (size - first) * k // n for k in range(n)]
        else:
            n = math.ceil(size / range_bytes) if cut else 1
            targets = [size * k // n for k in range(1, n)] if n > 1 else []
        out.append(_file_jobs(path, depth, size, targets))
    return out


def located(jobs: list[list[Job]]) -> list[list[Job]]:
    """The jobs, each pcapng range's start found by one walk of its file here, for workers
    that share no folder and may read the file over the network (scan and steer --dask):
    each would otherwise walk the file before its range again (capture/split_pcapng.py).
    The ranges past the file's last buffer start, which would read nothing, are left out
    (the one before reads to the file's end). A file that cannot be walked is left as it
    is: its workers walk it, and the reading reports what stops them."""
    return [_located(js) for js in jobs]


def _located(jobs: list[Job]) -> list[Job]:
    rest = [j for j in jobs if isinstance(j, RangeJob) and j.pcapng and not first_range(j)]
    if not rest:
        return jobs
    try:
        found = range_starts(rest[0].path, [j.start for j in rest])
    except (OSError, InputError):
        return jobs
    at = [start for start, _ in found]
    out: list[Job] = [jobs[0]]
    for job in rest:
        k = bisect.bisect_left(at, job.start)  # the first start at or after its target
        if k == len(at):
            break
        out.append(replace(job, begins=found[k]))
    last = out[-1]
    if len(out) < len(jobs) and isinstance(last, RangeJob):  # it reads to the file's end
        out[-1] = replace(last, end=rest[-1].end, last=True)
    return out


def _head_of(path: str, head: float) -> float | None:
    """The share of the file its first range takes (plan's `head`: a pcap file's), None
    for a file that is not cut."""
    if layout(path) is not None:
        return head
    return min(head * PCAPNG_HEAD, 1.0) if is_pcapng(path) else None


def to_cut(
    paths: Sequence[str],
    workers: int,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
    *,
    replays: bool = False,
) -> list[bool]:
    """Which inputs plan() may cut into ranges (it cuts those it can: an uncompressed
    pcap or pcapng file of more than one range): every one with `range_bytes`, else those
    _to_split picks, but for a caller that `replays` fragments, not those mostly of
    fragments; and those `split_at` names, where it says."""
    if range_bytes is not None:
        cut = [True] * len(paths)
    else:
        sizes = [os.path.getsize(p) if os.path.isfile(p) else 0 for p in paths]
        cut = [
            c and not (replays and fragment_share(p) >= FRAGMENT_HEAVY)
            for p, c in zip(paths, _to_split(sizes, workers), strict=True)
        ]
    return [c or (split_at is not None and p in split_at) for p, c in zip(paths, cut, strict=True)]


# A range's records that hold a fragment are replayed in the parent after the workers
# have read them (scale/assembly.py), so a file made mostly of fragments is read faster
# whole. Measured on the mix with more fragment trains (600k packets, two workers): 6% of
# records fragments, 0.27-0.29 s cut against 0.36 s whole; 22%, 0.22-0.23 s either way;
# 36%, 0.29-0.30 s against 0.26-0.27 s; a flood of first fragments, 0.90 against 0.71 s.
FRAGMENT_HEAVY = 0.2
# ~2,000 records of the mix: enough for a share against 20%, and 1-2 ms where the first 8
# MiB cost 6-13 ms before the workers could start.
SAMPLE_BYTES = 1 << 20


def fragment_share(path: str) -> float:
    """The share of records holding an IP fragment in the file's first SAMPLE_BYTES (a
    sample, decoded before any worker starts); 0 for what cannot be read, which the scan
    reports."""
    try:
        batches = tables(open_capture(path, chunk_bytes=SAMPLE_BYTES), InputResult(path))
        try:
            table = next(batches, None)
        finally:
            batches.close()
    except (InputError, OSError):
        return 0.0
    if table is None or table.n == 0:
        return 0.0
    return float((table.outer.is_frag | table.inner_raw.is_frag).mean())


def _to_split(sizes: list[int], workers: int) -> list[bool]:
    """Which files to cut into ranges: the largest ones, until the whole files left,
    dealt largest first to the least loaded worker (what pooled() does), keep every
    worker within 10 % of an even share. A range costs the parent its fragments' replay
    (Sequencer), so files that balance whole stay whole: four equal files on two workers
    are two each."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    split = [False] * len(sizes)
    bound = 1.1 * sum(sizes) / max(workers, 1)
    k = 0
    while k < len(order) and sizes[order[k]] > bound:  # alone above a share: cut, no doubt
        split[order[k]] = True
        k += 1
    for _ in range(SPLIT_TRIES):
        if k == len(order) or _dealt_max([sizes[i] for i in order[k:]], workers) <= bound:
            break
        split[order[k]] = True
        k += 1
    return split


SPLIT_TRIES = 8  # further files cut, at most, when whole ones do not deal evenly


def _dealt_max(sizes: list[int], workers: int) -> int:
    """The most any worker gets when `sizes` (largest first) go each to the least loaded."""
    loads = [0] * max(workers, 1)
    for size in sizes:
        heapq.heapreplace(loads, loads[0] + size)
    return max(loads)


def _file_jobs(path: str, depth: int, size: int, targets: list[int]) -> list[Job]:
    """One input's jobs: ranges cut near `targets`, or the whole file."""
    if not targets or not size:  # whole: no need to look at its layout (a 1 MiB read)
        return [FileJob(path, depth)]
    lay = layout(path)
    if lay is None:
        if not is_pcapng(path):
            return [FileJob(path, depth)]
        # Targets only: each range finds its start where it is read (split_pcapng.py).
        bounds = [0, *sorted({t for t in targets if 0 < t < size}), size]
        return [
            RangeJob(path, depth, b"", a, b, k == len(bounds) - 2, pcapng=True)
            for k, (a, b) in enumerate(itertools.pairwise(bounds))
        ]
    cuts = split_points(path, targets)
    if not cuts:
        return [FileJob(path, depth)]
    bounds = [HEADER, *cuts, size]
    return [
        RangeJob(path, depth, lay.header, a, b, k == len(bounds) - 2)
        for k, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def job_bytes(job: Job) -> int:
    """What a job reads of its file (a pcap file's first range reads its header too)."""
    if isinstance(job, RangeJob):
        return job.end - job.start + (HEADER if job.start == HEADER and job.header else 0)
    return os.path.getsize(job.path) if os.path.isfile(job.path) else 0


def weights(jobs: list[list[Job]]) -> list[int]:
    """Each job's weight for pooled(), flat in job order: what it reads, but a file's
    ranges all weigh as its largest, so that they start in file order (the parent puts
    their fragments in order as they come: a first range started last would hold up
    every other)."""
    return [w for js in jobs for w in [max(map(job_bytes, js))] * len(js)]
