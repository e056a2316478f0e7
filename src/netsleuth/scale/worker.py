"""What a worker runs: a whole input, or one byte range of it (its mergeable state and its
handover), and how the parent reads a range's result back."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.chunks import StreamReader
from netsleuth.capture.pcap import PcapReader
from netsleuth.capture.pcapng import PcapngReader
from netsleuth.capture.split import RECORD, Span, range_reader
from netsleuth.capture.split_pcapng import Section, find_start, remember
from netsleuth.capture.split_pcapng import range_reader as pcapng_range_reader
from netsleuth.checks import (
    Mergeable,
    hide_cut,
    stateless_checks,
)
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.pipeline import InputResult, tables
from netsleuth.scale.handover import COLUMN_FILE, COLUMN_TYPES, DATA_FILE, Frags, Handover, mapped
from netsleuth.scale.planning import FileJob, Job, RangeJob, first_range
from netsleuth.scan import Summary, scan_one


@dataclass
class Whole:
    """A whole input's result."""

    res: InputResult
    summary: Summary
    findings: list[Finding]


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
    span: Span  # where its reader read (SplitRecord joins the ranges by it)
    error: str | None = None
    spilled: str | None = None  # the folder of its arrays (Handover), until mapped
    # pcapng: the range's batches are the one-process reader's; (2, n): where each ends
    # (its last frame number in the range: pcapng numbers some blocks that hold no packet)
    # and its latest timestamp. None: replay them from `ends`.
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
    reader = None
    try:
        try:
            reader = open_range(job)
            capacity = reader.chunk_bytes if isinstance(reader, PcapReader) else 0
            for table in () if reader is None else tables(reader, res, tunnel_depth=job.depth):
                b = table.batch
                if not job.pcapng:  # pcap: the parent replays batches from record ends
                    e = pos + np.cumsum(b.caplen + RECORD)
                    pos = int(e[-1]) if e.shape[0] else pos
                    out.records(e, b.ts_ns)
                else:
                    # Where the batch ends in the range's frame numbers (blocks numbered
                    # as frames between two packets included): Sequencer._replay's bounds.
                    batches.append((int(b.frame[-1]), int(b.ts_ns.max())))
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
    done = np.array(batches, np.int64).reshape(-1, 2).T if job.pcapng else None
    span = span_of(job, reader, res)
    return Part(
        res, summary, checks, capacity, ends, stamps, frags, span, res.error, folder, batches=done
    )


def open_range(job: RangeJob) -> PcapReader | PcapngReader | None:
    """The range's reader; None for a pcapng range that starts past where the file's
    reading ends (split_pcapng.find_start)."""
    if not job.pcapng:
        return range_reader(job.path, job.header, job.start, job.end)
    if job.begins is not None:  # found before the job was sent (planning.located)
        at: tuple[int, Section] | None = job.begins
    elif first_range(job):
        at = (0, Section())
    else:
        at = find_start(job.path, job.start, job.starts)
    if at is None:
        return None
    return pcapng_range_reader(job.path, *at, stop_at=None if job.last else job.end)


def span_of(job: RangeJob, reader: StreamReader | None, res: InputResult) -> Span:
    """Where the range's reader read, once it has. A pcapng reader's stop is the next
    range's start: remembered, so that this process need not walk to it again."""
    stopped = res.error is not None or any(i.stops for i in res.issues)
    if reader is None:
        return Span(None, 0, final=True)
    if not isinstance(reader, PcapngReader):
        return Span(job.start, job.end, final=job.last or stopped)
    if reader.stopped is None:  # at the file's end, or an issue that stops it
        return Span(reader.start, reader.source.consumed, final=True)
    remember(job.path, job.end, *reader.stopped, shared=job.starts)
    return Span(reader.start, reader.stopped[0], final=stopped)


def unspill(part: Part) -> Part:
    """The arrays and bytes a Handover wrote, mapped read-only rather than read: the parent
    touches each page once, as it replays (measured: reading them all first cost the
    parent ~0.1 s a range, all of it on the one core that orders the fragments). The
    files go at once; the mappings keep their pages while in use."""
    if part.spilled is None:
        return part
    a = [
        mapped(os.path.join(part.spilled, COLUMN_FILE.format(k)), t, read=k < 2)
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
