"""`scan --workers N`: the pipeline over many processes, with the same result as one.

Work is cut into jobs: a whole input per job, or, for a large uncompressed classic pcap
file, one job per record-aligned byte range (capture/split.py). A file is cut only where
whole files would leave a worker idle (plan: four equal files on two workers stay whole,
two each); jobs start heaviest first, a file's ranges in file order. Jobs run in worker
processes (multiprocessing: forked when this process runs one thread, from a fork server
otherwise, see context()); results come back in input order as compact picklable state,
and the parent puts them together:

- Mergeable analyses (the summary counts and the per-packet checks: checks.stateless_checks)
  run in the workers; the parent merges each range's state into the previous ones', with
  the range's frame numbers shifted by the records before it (pipeline.py: merge).
- The fragment audit and the outer reassembly cannot be cut: a fragment train or an outer
  datagram can straddle a split, and a datagram's verdict depends on every earlier fragment
  of its key (and on when the reader's batches end: that is when both expire datagrams
  older than 30 s). So a range's worker hands over its fragments instead: the records
  of every packet with a fragment in any IP layer (their bytes one after the other,
  Handover), plus where each record ends in the file and its timestamp. The parent
  replays the one-process reader's batch boundaries from those record ends (4 MiB
  buffers, at most MAX_RECORDS records a batch: capture/chunks.py), decodes the fragments
  of each batch again and runs the two checks over them in file order, with each batch's
  latest timestamp; the packets the reassembly rebuilds go to parent-side per-packet
  checks that are merged like the others. The verdicts, frame lists, evidence and flagged keys are
  those of one process, by construction.

Cost: 16 bytes a record (end offset and timestamp) and the fragments' records cross to
the parent, through files it maps (Handover, _unspill); fragments are decoded twice;
the two stateful checks stay on one core (the parent), which bounds the speed-up by
their share of the work. Memory: a worker writes as it reads (Handover); the parent maps
a range's files, gives back the pages of every batch it has replayed (Frags.release:
263 MB -> 74 MB peak on 400 MB of fragments), and holds the results of ranges that
arrived early unmapped (ranges are at most MAX_RANGE bytes).

A large uncompressed pcapng file is split too (capture/split_pcapng.py): its ranges start
where the one-process reader's buffers start, each with its section's byte order and
interfaces, so a range's batches are the one-process reader's own; the range says where
they end (Part.batches) and the parent replays them as they are. Snoop, gzip and stdin
inputs are not split (one job each): a gzip stream cannot be entered in the middle.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import heapq
import itertools
import math
import mmap
import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.batch import PAD, RecordBatch
from netsleuth.capture.chunks import MAX_RECORDS, ReadIssue
from netsleuth.capture.pcap import PcapReader
from netsleuth.capture.pcapng import PcapngReader
from netsleuth.capture.split import HEADER, RECORD, layout, range_reader, split_points
from netsleuth.capture.split_pcapng import Section, split_ranges
from netsleuth.capture.split_pcapng import range_reader as pcapng_range_reader
from netsleuth.checks import (
    CHECKS,
    Check,
    Mergeable,
    feed_rebuilt,
    hide_cut,
    stateless_checks,
)
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.decode import decode
from netsleuth.decode.table import PacketTable
from netsleuth.errors import FacilityError, InputError
from netsleuth.findings import Finding
from netsleuth.pipeline import InputResult, Progress, tables
from netsleuth.scan import ScanResult, Summary, input_findings, scan_one, scan_result

J = TypeVar("J")
R = TypeVar("R")

MIN_RANGE = 32 << 20  # smaller files are one job: splitting costs more than it gains
MAX_RANGE = 256 << 20  # bounds what a range's result holds


PROCESSES_MIN = 64 << 20  # below this much input, starting processes costs more (~0.3 s)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count; the
    count where there is no affinity call: macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worth_processes(paths: Sequence[str]) -> bool:
    """Whether the inputs are large enough for worker processes to pay for themselves."""
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p)) >= PROCESSES_MIN


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
    spill: str | None = None  # a folder for the result's arrays (see _spill)
    section: Section | None = None  # pcapng: its section at `start`; None: classic pcap


Job = FileJob | RangeJob


@dataclass
class Whole:
    """A whole input's result."""

    res: InputResult
    summary: Summary
    findings: list[Finding]


@dataclass
class Frags:
    """The records of one range that hold a fragment in any IP layer: their fields, and
    their bytes one after the other in `data` (then PAD zero bytes), record i's at
    data[pos[i] : pos[i] + caplen[i]]. `data` is a mapped file of the spill folder when the
    range ran in a worker process (Handover), an array otherwise."""

    frame: NDArray[np.int64]  # 1-based within the range
    pos: NDArray[np.int64]
    caplen: NDArray[np.int64]
    wirelen: NDArray[np.int64]
    ts_ns: NDArray[np.int64]
    linktype: NDArray[np.int32]
    data: NDArray[np.uint8]

    @classmethod
    def of(cls, fields: Sequence[NDArray[Any]], data: NDArray[np.uint8]) -> Frags:
        """From the FRAG_FIELDS columns, in order, and the bytes."""
        frame, pos, caplen, wirelen, ts_ns, linktype = fields
        return cls(frame, pos, caplen, wirelen, ts_ns, linktype, data)

    def rows(self, lo: int, hi: int) -> Frags:
        """Rows lo..hi-1, over the same bytes (no copy)."""
        return Frags.of([getattr(self, f)[lo:hi] for f in FRAG_FIELDS], self.data)

    def record_batch(self) -> RecordBatch:
        """The rows as a batch over their span of `data` (no copy): each record's bytes
        followed by the next fragments', and PAD zero bytes after the range's last."""
        if not self.frame.shape[0]:
            return RecordBatch.from_packets([])
        lo, hi = int(self.pos[0]), int(self.pos[-1] + self.caplen[-1])
        return RecordBatch(
            self.data[lo : hi + PAD],
            self.pos - lo,
            self.caplen,
            self.wirelen,
            self.ts_ns,
            self.linktype,
            self.frame,
        )

    def release(self, upto: int) -> None:
        """Rows before `upto` are done with: where they are mapped from a file, their pages
        go (MADV_DONTNEED), so the parent holds a batch's fragments, not a range's (a range
        of small fragments held 82 MB of fields and more of bytes). A view still in use
        reads them again from the file."""
        if upto <= 0:
            return
        for name in FRAG_FIELDS:
            column = getattr(self, name)
            _give_back(column, upto * column.itemsize)
        _give_back(self.data, int(self.pos[upto - 1] + self.caplen[upto - 1]))

    @classmethod
    def join(cls, parts: list[Frags]) -> Frags:
        """The rows of several ranges (a batch across a split), their bytes copied."""
        batches = [p.record_batch() for p in parts]
        data = np.concatenate([b.buf[: b.buf.shape[0] - PAD] for b in batches] + [PAD_BYTES])
        starts = np.cumsum([0] + [b.buf.shape[0] - PAD for b in batches[:-1]])
        pos = np.concatenate([b.offset + at for b, at in zip(batches, starts, strict=True)])
        fields = [np.concatenate([getattr(p, f) for p in parts]) for f in FRAG_FIELDS]
        fields[FRAG_FIELDS.index("pos")] = pos
        return cls.of(fields, data)


FRAG_FIELDS = tuple(f for f in Frags.__dataclass_fields__ if f != "data")


def _give_back(array: NDArray[Any], nbytes: int) -> None:
    """The first `nbytes` of an array mapped from the start of a file (_mapped): their
    whole pages leave this process's memory. Arrays in memory are left alone."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    whole = nbytes - nbytes % mmap.PAGESIZE
    if isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap) and whole > 0:
        base.obj.madvise(mmap.MADV_DONTNEED, 0, whole)


PAD_BYTES = np.zeros(PAD, dtype=np.uint8)
IOV_MAX = 1024  # iovecs one writev takes (Linux UIO_MAXIOV)


class Handover:
    """What a range's worker hands the parent, appended batch by batch as it reads: each
    record's end offset and timestamp (pcap), and the records that hold a fragment (their
    fields, and their bytes one after the other: record i's at data[pos[i]:]).

    With a folder, each array goes to a raw file of its own as it comes (the bytes by
    os.writev of the records' slices of the reader's buffer: one copy, nothing joined in
    between), so the worker's memory does not grow with its range (holding them cost 190
    MB on a range of small fragments); the parent maps the files (_unspill). Without (a
    Dask task's result, tests), they are kept and joined."""

    def __init__(self, folder: str | None) -> None:
        self.folder = folder
        names = [*(COLUMN_FILE.format(k) for k in range(len(COLUMNS))), DATA_FILE]
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        self.fds = (
            [] if folder is None else [os.open(os.path.join(folder, n), flags) for n in names]
        )
        self.held: list[list[NDArray[Any]]] = [[] for _ in names]
        self.size = 0  # fragment bytes so far

    def records(self, ends: NDArray[np.int64], ts_ns: NDArray[np.int64]) -> None:
        self._put(0, [ends.data])
        self._put(1, [np.ascontiguousarray(ts_ns).data])

    def fragments(self, t: PacketTable) -> None:
        b = t.batch
        rows = np.flatnonzero(t.outer.is_frag | t.inner_raw.is_frag)
        cap = b.caplen[rows]
        pos = np.empty(rows.shape[0], dtype=np.int64)
        np.cumsum(cap, out=pos)
        pos -= cap - self.size  # where each record starts: the bytes before it, so far
        fields: list[NDArray[Any]] = [
            b.frame[rows], pos, cap, b.wirelen[rows], b.ts_ns[rows], b.linktype[rows]
        ]  # fmt: skip
        for k, column in enumerate(fields, start=2):
            self._put(k, [column.data])
        view = b.buf.data
        offsets = b.offset[rows].tolist()
        self._put(
            len(COLUMNS), [view[o : o + c] for o, c in zip(offsets, cap.tolist(), strict=True)]
        )
        self.size += int(cap.sum())

    def _put(self, k: int, pieces: Sequence[memoryview]) -> None:
        if self.folder is None:  # copies: a view would keep the reader's whole buffer
            self.held[k] += [np.frombuffer(p, HANDOVER_TYPES[k]).copy() for p in pieces]
            return
        if not self.fds:
            raise ValueError(f"{self.folder}: the handover was closed")
        for at in range(0, len(pieces), IOV_MAX):
            chunk = pieces[at : at + IOV_MAX]
            want = sum(p.nbytes for p in chunk)
            if os.writev(self.fds[k], chunk) != want:  # a full /dev/shm: the disk-full error
                raise OSError(errno.ENOSPC, "short write to the spill folder", self.folder)

    def finish(self) -> tuple[NDArray[np.int64], NDArray[np.int64], Frags]:
        """(ends, timestamps, fragments): joined, or empty when they went to files."""
        self._put(len(COLUMNS), [PAD_BYTES.data])
        self.close()
        cols = [
            np.concatenate(h) if h else np.zeros(0, dtype)
            for h, dtype in zip(self.held, HANDOVER_TYPES, strict=True)
        ]
        data = cols[-1] if self.folder is None else PAD_BYTES
        return cols[0], cols[1], Frags.of(cols[2:-1], data)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


COLUMNS = ("ends", "ts_ns", *FRAG_FIELDS)  # what a Handover writes, each to a file
COLUMN_TYPES = [np.dtype(np.int64)] * (len(COLUMNS) - 1) + [np.dtype(np.int32)]
HANDOVER_TYPES = [*COLUMN_TYPES, np.dtype(np.uint8)]  # and the fragments' bytes


@dataclass
class Part:
    """A range's result: mergeable state, record ends and timestamps, fragments."""

    res: InputResult
    summary: Summary
    checks: list[Mergeable]
    capacity: int  # the reader's buffer size: where the one-process batches end
    ends: NDArray[np.int64]
    ts_ns: NDArray[np.int64]
    frags: Frags
    error: str | None = None
    spilled: str | None = None  # the folder of its arrays (Handover), until mapped
    # pcapng: the range's batches are the one-process reader's; (2, n): where each ends
    # (records in the range) and its latest timestamp. None: replay them from `ends`.
    batches: NDArray[np.int64] | None = None


def run_job(job: Job) -> Whole | Part:
    """What a worker runs (module level: it is pickled by name)."""
    return run_range(job) if isinstance(job, RangeJob) else run_file(job)


def run_file(job: FileJob) -> Whole:
    res, summary = InputResult(job.path), Summary()
    try:
        findings = scan_one(job.path, res, summary, job.depth, None)
    except InputError as err:
        res.error, findings = str(err), []
    return Whole(res, summary, findings)


def run_range(job: RangeJob) -> Part:
    res, summary, checks = InputResult(job.path), Summary(), stateless_checks()
    batches: list[tuple[int, int]] = []
    pos, capacity = job.start, 0
    folder = None if job.spill is None else os.path.join(job.spill, str(job.start))
    if folder is not None:
        os.mkdir(folder)
    out = Handover(folder)
    try:
        try:
            reader = _range_reader(job)
            capacity = reader.chunk_bytes if isinstance(reader, PcapReader) else 0
            for table in tables(reader, res, tunnel_depth=job.depth):
                b = table.batch
                if job.section is None:  # pcap: the parent replays batches from record ends
                    e = pos + np.cumsum(b.caplen + RECORD)
                    pos = int(e[-1]) if e.shape[0] else pos
                    out.records(e, b.ts_ns)
                else:
                    batches.append((res.packets, int(b.ts_ns.max())))
                summary.observe(table)
                hide_cut(table)
                for check in checks:
                    check.observe(table)
                out.fragments(table)
        except InputError as err:
            res.error = str(err)
        ends, stamps, frags = out.finish()
    finally:
        out.close()  # on the way out of any other error
    done = None if job.section is None else np.array(batches, np.int64).reshape(-1, 2).T
    return Part(
        res, summary, checks, capacity, ends, stamps, frags, res.error, folder, batches=done
    )


COLUMN_FILE = "column-{}"  # in a spilled range's folder, one per array of COLUMNS
DATA_FILE = "fragments"  # and its fragments' bytes


def _range_reader(job: RangeJob) -> PcapReader | PcapngReader:
    if job.section is None:
        return range_reader(job.path, job.header, job.start, job.end)
    return pcapng_range_reader(job.path, job.start, job.end, job.section)


# A range's arrays (tens of MB) go through files in a folder the parent owns, not through
# the pool's pipe: measured, the pipe's 64 KiB writes cost ~0.1 s a range on a busy machine.
def _job_dir(root: str, k: int) -> str:
    path = os.path.join(root, str(k))
    os.mkdir(path)
    return path


def _unspill(part: Part) -> Part:
    """The arrays and bytes a Handover wrote, mapped read-only rather than read: the parent
    touches each page once, as it replays (measured: reading them all first cost the
    parent ~0.1 s a range, all of it on the one core that orders the fragments). The
    files go at once; the mappings keep their pages while in use."""
    if part.spilled is None:
        return part
    a = [
        _mapped(os.path.join(part.spilled, COLUMN_FILE.format(k)), t, read=k < 2)
        for k, t in enumerate(COLUMN_TYPES)
    ]
    fd = os.open(os.path.join(part.spilled, DATA_FILE), os.O_RDONLY)
    try:  # never empty: PAD bytes at least
        data = np.frombuffer(mmap.mmap(fd, 0, access=mmap.ACCESS_READ), dtype=np.uint8)
    finally:
        os.close(fd)
    os.unlink(os.path.join(part.spilled, DATA_FILE))
    os.rmdir(part.spilled)
    return replace(part, ends=a[0], ts_ns=a[1], frags=Frags.of(a[2:], data), spilled=None)


def _mapped(path: str, dtype: np.dtype[Any], *, read: bool = False) -> NDArray[Any]:
    """A raw column file, mapped from its start (or read: the record ends and timestamps,
    which the parent joins at once), and unlinked."""
    try:
        if read or os.path.getsize(path) == 0:  # an empty file cannot be mapped
            return np.fromfile(path, dtype=dtype)
        fd = os.open(path, os.O_RDONLY)
        try:
            return np.frombuffer(mmap.mmap(fd, 0, access=mmap.ACCESS_READ), dtype=dtype)
        finally:
            os.close(fd)
    finally:
        os.unlink(path)


# ----- the parent: fragments in file order ---------------------------------------------------
class Sequencer:
    """The fragment audit and the outer reassembly over the ranges' fragments, batch by
    batch as the one-process reader would have cut them."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.audit = FragmentAudit()
        self.reassembly = TunnelReassembly()
        self.rebuilt = stateless_checks()  # what the rebuilt packets flag
        self.base = HEADER  # file offset of the reader's buffer
        self.done = 0  # records put in a batch so far
        self.capacity = 0
        self.ends: list[NDArray[np.int64]] = []
        self.ts: list[NDArray[np.int64]] = []
        # The parts' fragments not yet replayed: a batch takes its rows from one or two of
        # them (a batch is at most 4 MiB, a range at least MIN_RANGE).
        self.frags: list[tuple[Frags, int]] = []  # each with its first frame's offset

    def feed(self, part: Part, frame_offset: int) -> None:
        if part.batches is not None:
            self._replay(part, frame_offset)
            return
        self.capacity = part.capacity
        self.ends.append(part.ends)
        self.ts.append(part.ts_ns)
        self.frags.append((part.frags, frame_offset))
        self._drain(final=False)

    def finish(self) -> None:
        if self.ends:  # none when every part said where its batches end
            self._drain(final=True)

    def _replay(self, part: Part, frame_offset: int) -> None:
        """A range whose batches are the one-process reader's (pcapng), batch by batch."""
        assert part.batches is not None
        self.frags = [(part.frags, frame_offset)]
        lo = frame_offset
        for hi, now in part.batches.T.tolist():
            self._batch(lo, frame_offset + hi, now)
            lo = frame_offset + hi
        self.frags = []

    def _drain(self, *, final: bool) -> None:
        ends, ts = np.concatenate(self.ends), np.concatenate(self.ts)
        used = 0
        while used < ends.shape[0]:
            # The reader's buffer holds [base, base + capacity): every record ending inside.
            j = int(np.searchsorted(ends, self.base + self.capacity, side="right"))
            j = max(j, used + 1)  # a record never exceeds the buffer (pcap.py)
            if j == ends.shape[0] and not final:
                break  # the buffer may reach into the next range
            for lo in range(used, j, MAX_RECORDS):
                hi = min(lo + MAX_RECORDS, j)
                self._batch(self.done + lo, self.done + hi, int(ts[lo:hi].max()))
            self.base = int(ends[j - 1])
            used = j
        self.done += used
        self.ends, self.ts = [ends[used:]], [ts[used:]]
        self.frags = [
            (f, k) for f, k in self.frags if f.frame.shape[0] and f.frame[-1] + k > self.done
        ]

    def _batch(self, lo: int, hi: int, now: int) -> None:
        """Records lo..hi-1 (0-based, the file's) were one batch of the one-process run."""
        pieces = []
        for f, shift in self.frags:
            a, b = np.searchsorted(f.frame, [lo - shift, hi - shift], side="right").tolist()
            if a < b:
                rows = f.rows(a, b)
                pieces.append((f, b, replace(rows, frame=rows.frame + shift)))
        if not pieces:
            self.audit.advance(now)
            self.reassembly.advance(now)
            return
        batch = [p for _, _, p in pieces]
        frags = batch[0] if len(batch) == 1 else Frags.join(batch)
        table = decode(frags.record_batch(), tunnel_depth=self.depth)
        hide_cut(table)
        self.audit.observe(table, now=now)
        self.reassembly.observe(table, now=now)
        feed_rebuilt(self.reassembly, [*self.rebuilt, self.audit])
        for f, done, _ in pieces:
            f.release(done)


def _shifted(issue: ReadIssue, frames: int) -> ReadIssue:
    """A range reader numbers its records from 1: its issue, numbered in the file. The
    pcap reader's messages name the record once, as "record N" (capture/pcap.py)."""
    frame = issue.frame + frames
    message = issue.message.replace(f"record {issue.frame}", f"record {frame}", 1)
    return replace(issue, frame=frame, message=message)


class SplitRecord:
    """A split input's record, its ranges' records joined in file order (scan's and
    steer's workers alike).

    A range other than the last must end exactly where the next starts: otherwise its
    start was no record boundary, or the file is corrupt in the middle (the one-process
    reader stops there). Either way `ok` goes false and the caller reads the file in one
    piece. A range's read issues that did not stop its reader (pcapng: a block clipped or
    skipped, in the one-process reader's own buffers) are kept, each range's numbered in
    the file, in file order."""

    def __init__(self, path: str) -> None:
        self.res = InputResult(path)
        self.frames = 0  # records in the ranges joined so far
        self.ok = True

    def add(self, res: InputResult, job: RangeJob) -> bool:
        """Join the next range's record; False (and from then on) when they do not join."""
        stopped = any(i.stops for i in res.issues)
        if not self.ok or res.error or (stopped and not job.last):
            self.ok = False
            return False
        self.res.merge(res)
        self.res.format, self.res.compressed = res.format, res.compressed
        self.res.issues += [_shifted(i, self.frames) for i in res.issues]
        self.frames += res.packets
        return True


class Assembler:
    """One split input: its ranges' parts, in order, into one result."""

    def __init__(self, path: str, depth: int) -> None:
        self.record = SplitRecord(path)
        self.summary = Summary()
        self.checks: list[Mergeable] = stateless_checks()
        self.seq = Sequencer(depth)

    def add(self, part: Part, job: RangeJob) -> None:
        first = self.record.frames  # the part's frame 1 is the file's first + 1
        if not self.record.add(part.res, job):
            return
        self.summary.merge(part.summary)
        for mine, theirs in zip(self.checks, part.checks, strict=True):
            mine.merge(theirs, first)
        self.seq.feed(part, first)

    def finish(self) -> tuple[list[Finding], Summary]:
        self.seq.finish()
        for mine, theirs in zip(self.checks, self.seq.rebuilt, strict=True):
            mine.merge(theirs, 0)
        stateless = iter(self.checks)
        # The one-process order of checks (collect() reports them in it).
        checks: list[Check] = [
            self.seq.audit if c is FragmentAudit else next(stateless) for c in CHECKS
        ]
        checks.append(self.seq.reassembly)
        res = self.record.res
        return input_findings(res, checks, res.path), self.summary


# ----- planning and running ------------------------------------------------------------------
def plan(
    paths: Sequence[str],
    depth: int,
    workers: int,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
) -> list[list[Job]]:
    """The jobs of each input, in order. Without `range_bytes` a file is cut into ranges
    only where whole files would leave a worker idle (_to_split); with it, every file
    larger than it is cut."""
    sizes = {p: os.path.getsize(p) if os.path.isfile(p) else 0 for p in paths}
    if range_bytes is None:
        share = math.ceil(sum(sizes.values()) / max(2 * workers, 1))
        range_bytes = min(max(share, MIN_RANGE), MAX_RANGE)
        split = _to_split([sizes[p] for p in paths], workers)
    else:
        split = [True] * len(paths)
    out: list[list[Job]] = []
    for path, cut in zip(paths, split, strict=True):
        if split_at is not None and path in split_at:
            targets = split_at[path]
        else:
            n = math.ceil(sizes[path] / range_bytes) if cut else 1
            targets = [sizes[path] * k // n for k in range(1, n)] if n > 1 else []
        out.append(_file_jobs(path, depth, sizes[path], targets))
    return out


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
    lay = layout(path) if size else None
    if lay is None and size:
        ng = split_ranges(path, targets)
        if ng:
            return [
                RangeJob(path, depth, b"", r.start, r.end, r is ng[-1], section=r.section)
                for r in ng
            ]
    cuts = split_points(path, targets) if lay is not None and targets else []
    if lay is None or not cuts:
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


def scan_parallel(
    paths: Sequence[str],
    *,
    tunnel_depth: int,
    progress: Progress | None,
    workers: int,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
    processes: bool = True,
) -> ScanResult:
    """scan() over `workers` processes (processes=False: in this one, for tests)."""
    jobs = plan(paths, tunnel_depth, workers, range_bytes, split_at)
    flat = [j for js in jobs for j in js]
    if not processes or len(flat) == 1:
        return assemble(jobs, map(run_job, flat), progress)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with (
        term_unwinds(),
        tempfile.TemporaryDirectory(prefix=f"netsleuth-{os.getpid()}-", dir=shm) as spill,
    ):
        # One folder per job: the same file may be given twice, and its ranges would
        # otherwise share spill names (named by their start offset).
        spilled = [
            replace(j, spill=_job_dir(spill, k)) if isinstance(j, RangeJob) else j
            for k, j in enumerate(flat)
        ]
        # On every way out the pool ends (the running jobs finish their range, at most
        # MAX_RANGE bytes) before the spill folder goes.
        with pooled(run_job, spilled, workers, weights=weights(jobs)) as results:
            return assemble(jobs, results, progress)


@contextlib.contextmanager
def pooled(
    run: Callable[[J], R],
    jobs: Sequence[J],
    workers: int,
    *,
    weights: Sequence[int] | None = None,
    preload: str = __name__,
) -> Iterator[Iterator[R]]:
    """`run` over `jobs` in at most `workers` processes (context(preload)), the results in
    job order, for scan's and steer's workers alike. The jobs start heaviest first (by
    `weights`; a free worker takes the next): a large job last would leave the other
    workers idle while it runs. On every way out (an error, Ctrl-C,
    SIGTERM: term_unwinds) the stop flag is raised (stop_requested(): a worker may end its
    job early, its result dropped), the jobs not started are dropped and the pool is shut
    down before the caller's folders go. A worker that dies is one FacilityError."""
    ctx = context(preload)
    stop = ctx.RawValue("b", 0)
    with term_unwinds():
        pool = ProcessPoolExecutor(
            min(workers, len(jobs)), mp_context=ctx, initializer=_worker_init, initargs=(stop,)
        )
        try:
            # The objects alive now (modules, NumPy, the decoders) are left out of every
            # later garbage collection, here and in the forked workers: a collection would
            # otherwise walk them in each worker and copy every page it touched.
            gc.freeze()
            order = list(range(len(jobs)))
            if weights is not None:
                order.sort(key=lambda k: -weights[k])  # stable: ties keep their order
            futures = {k: pool.submit(run, jobs[k]) for k in order}
            yield (futures[k].result() for k in range(len(jobs)))
        except BrokenProcessPool as err:
            raise FacilityError(
                f"a worker process died ({err}); the machine may be out of memory: try --workers 1"
            ) from err
        finally:
            gc.unfreeze()
            stop.value = 1
            pool.shutdown(wait=True, cancel_futures=True)


def context(preload: str = __name__) -> multiprocessing.context.BaseContext:
    """Fork this process when it is safe: the workers then start with NumPy and the
    decoders already imported, in milliseconds (a fork server, a fresh interpreter that
    imports `preload` and then forks, took 0.3-0.6 s here: most of a 1M-packet file's
    run). Safe means one thread: a lock another thread holds at the fork stays held for
    good in the child. The pool's own thread starts after its processes, as fork requires
    (concurrent.futures.process: _safe_to_dynamically_spawn_children), and the progress
    bar's refresh thread on its first update, after the pool (commands/common.py)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([preload])
    return ctx


@contextlib.contextmanager
def term_unwinds() -> Iterator[None]:
    """SIGTERM unwinds (as Ctrl-C) while workers run, when nobody has said what it should
    do: the command line has (cliutil.install_signals: exit 143 after every `finally`), a
    library caller may not, and its default action would leave the workers and the spill
    folder behind."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# In a worker: the parent's stop flag (a byte in shared memory, no lock: a worker killed
# while holding a lock, as a multiprocessing.Event's, would block everyone after it).
_STOP: list[Any] = []


def stop_requested() -> bool:
    """In a worker of pooled(): whether the parent has stopped the pool."""
    return bool(_STOP and _STOP[0].value)


def _worker_init(stop: Any) -> None:
    """Ctrl-C on a terminal reaches the whole process group: the parent reports it once
    and stops the workers through `stop`; a worker that also raised KeyboardInterrupt
    would print a traceback of its own. A forked worker also inherits the parent's
    SIGTERM handler (cliutil's or term_unwinds'): it ends as SIGTERM says instead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _STOP.append(stop)


def assemble(
    jobs: list[list[Job]], results: Iterator[Whole | Part], progress: Progress | None
) -> ScanResult:
    summary = Summary()
    inputs: list[InputResult] = []
    findings: list[Finding] = []
    for input_jobs in jobs:
        first = input_jobs[0]
        if isinstance(first, FileJob):
            whole = next(results)
            assert isinstance(whole, Whole)
            inputs.append(whole.res)
            summary.merge(whole.summary)
            findings.extend(whole.findings)
            if progress is not None and whole.res.error is None:
                progress(first.path, os.path.getsize(first.path))
            continue
        asm = Assembler(first.path, first.depth)
        for job in input_jobs:
            part = next(results)
            assert isinstance(part, Part) and isinstance(job, RangeJob)
            asm.add(_unspill(part), job)
            if progress is not None:
                progress(job.path, job.end)
        if asm.record.ok:
            got, part_summary = asm.finish()
            inputs.append(asm.record.res)
            summary.merge(part_summary)
            findings.extend(got)
        else:  # read in one piece, here
            whole = run_file(FileJob(first.path, first.depth))
            inputs.append(whole.res)
            summary.merge(whole.summary)
            findings.extend(whole.findings)
    return scan_result(inputs, summary, findings)
