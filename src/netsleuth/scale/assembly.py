"""The parent: a split input's ranges, in order, into one result (the fragment audit and
the outer reassembly replayed over the handed-over fragments), and every input's result
into the scan's."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.chunks import MAX_RECORDS, ReadIssue, add_issue
from netsleuth.capture.pcap import PcapReader
from netsleuth.capture.split import HEADER, RECORD, Span
from netsleuth.checks import (
    CHECKS,
    Check,
    Mergeable,
    follow,
    hide_cut,
    stateless_checks,
)
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.decode import decode
from netsleuth.decode.table import PacketTable
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.pipeline import InputResult, Progress, few_collections, tables
from netsleuth.scale.handover import Frags, Handover
from netsleuth.scale.planning import FileJob, Job, RangeJob
from netsleuth.scale.worker import Part, Whole, open_range, run_file, span_of, unspill
from netsleuth.scan import ScanResult, Summary, input_findings, scan_result


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
        # them (a batch is at most CHUNK_BYTES, a range at least MIN_RANGE).
        self.frags: list[tuple[Frags, int]] = []  # each with its first frame's offset

    def feed(self, part: Part, frame_offset: int) -> None:
        if part.batches is not None:
            self._replay(part, frame_offset)
            return
        self.hold(part.capacity, part.ends, part.ts_ns, part.frags, frame_offset)

    def hold(
        self,
        capacity: int,
        ends: NDArray[np.int64],
        ts: NDArray[np.int64],
        frags: Frags,
        frame_offset: int,
    ) -> None:
        """Records that follow the ones fed so far: their ends and timestamps, and those
        that hold a fragment (frame numbers `frame_offset` before the file's)."""
        self.capacity = capacity
        self.ends.append(ends)
        self.ts.append(ts)
        self.frags.append((frags, frame_offset))
        self._drain(final=False)

    def observe(self, table: PacketTable) -> None:
        """A batch of the one-process reader, whole: both checks at once (no replay)."""
        follow(self.reassembly, self.audit, list(self.rebuilt), table)

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
        follow(self.reassembly, self.audit, list(self.rebuilt), table, now=now)
        for f, done, _ in pieces:
            f.release(done)


class _Tail:
    """The records of a pcap file's first range from the first reader buffer that reaches
    past the range's end: that buffer holds more records in one process (the next
    range's first), so its batch is the Sequencer's to replay. A buffer is `capacity`
    bytes from its first record and holds every record that ends inside (pcap.py; the
    Sequencer cuts batches by the same rule)."""

    def __init__(self, job: RangeJob, capacity: int) -> None:
        self.end = job.end
        self.capacity = capacity  # the reader's buffer size, the one-process reader's
        self.pos = self.base = job.start  # where the next record starts; its buffer's start
        self.before = 0  # records before the held ones
        self.held = Handover(None)
        self.holding = False

    def take(self, table: PacketTable) -> bool:
        """Whether this batch's records are held (else they are read at once)."""
        b = table.batch
        ends = self.pos + np.cumsum(b.caplen + RECORD)
        if ends.shape[0] and int(ends[0]) > self.base + self.capacity:
            self.base = self.pos  # the first record past a buffer starts the next one
        self.pos = int(ends[-1]) if ends.shape[0] else self.pos
        self.holding = self.holding or self.base + self.capacity > self.end
        if self.holding:
            self.held.records(ends, b.ts_ns)
            self.held.fragments(table)
        else:
            self.before += len(b)
        return self.holding

    def give(self, seq: Sequencer, records: int) -> None:
        """The Sequencer takes over after the records read at once."""
        seq.base = self.base if self.holding else self.pos
        seq.done = self.before
        ends, ts, frags = self.held.finish()
        assert seq.done + ends.shape[0] == records
        seq.hold(self.capacity, ends, ts, frags, 0)  # their frames are the file's already


def _shifted(issue: ReadIssue, frames: int) -> ReadIssue:
    """A range reader numbers its records from 1: its issue, numbered in the file. The
    pcap reader's messages name the record once, as "record N" (capture/pcap.py)."""
    frame = issue.frame + frames
    message = issue.message.replace(f"record {issue.frame}", f"record {frame}", 1)
    return replace(issue, frame=frame, message=message)


class SplitRecord:
    """A split input's record, its ranges' records joined in file order (scan's and
    steer's workers alike).

    Each range must start where the one before ended (Span): otherwise a pcap range's
    start was no record boundary, or the file is corrupt in the middle (the one-process
    reader stops there), or it changed while it was read. Only ranges that read nothing
    may follow one whose reading ended the file's (its end, or an issue that stops the
    reader: a pcapng range after it finds no start). Where they do not join, `ok` goes
    false and the caller reads the file in one piece. A range's read issues that did not
    stop its reader (pcapng: a block clipped or skipped, in the one-process reader's own
    buffers) are numbered in the file and added up by kind, as one reader does across its
    buffers (add_issue)."""

    def __init__(self, path: str) -> None:
        self.res = InputResult(path)
        self.frames = 0  # records in the ranges joined so far
        self.ok = True
        self.end: int | None = None  # where the ranges joined so far end
        self.final = False  # and whether the file's reading ends there

    def add(self, res: InputResult, span: Span) -> bool:
        """Join the next range's record; False (and from then on) when they do not join."""
        if span.start is None:  # found no start: the reading must have ended before
            self.ok = self.ok and self.final and res.packets == 0 and not res.issues
            return self.ok
        joins = self.end is None or (span.start == self.end and not self.final)
        if not self.ok or res.error or not joins:
            self.ok = False
            return False
        self.end, self.final = span.end, span.final
        self.res.merge(res)
        self.res.format, self.res.compressed = res.format, res.compressed
        for issue in res.issues:
            add_issue(self.res.issues, _shifted(issue, self.frames))
        self.res.drops.merge(res.drops, self.frames)
        self.frames += res.frames
        return True


class Assembler:
    """One split input: its ranges' parts, in order, into one result."""

    def __init__(self, path: str, depth: int) -> None:
        self.record = SplitRecord(path)
        self.summary = Summary()
        self.checks: list[Mergeable] = stateless_checks()
        self.seq = Sequencer(depth)

    def add(self, part: Part) -> None:
        first = self.record.frames  # the part's frame 1 is the file's first + 1
        if not self.record.add(part.res, part.span):
            return
        self.summary.merge(part.summary)
        for mine, theirs in zip(self.checks, part.checks, strict=True):
            mine.merge(theirs, first)
        self.seq.feed(part, first)

    def add_head(self, job: RangeJob) -> None:
        """A file's first range, read here while the workers read the others: every batch
        that is the one-process reader's own goes through every check at once, with no
        handover and no replay. A pcapng range ends where a reader buffer starts
        (capture/split_pcapng.py), so all of its batches are; a pcap range's are up to
        the buffer that reaches past its end (_Tail), whose records the Sequencer puts in
        a batch with the next range's first records, as one process does."""
        res, seq, tail = InputResult(job.path), self.seq, None
        reader = None
        try:
            reader = open_range(job)
            assert reader is not None  # a first range starts at the file's start
            if isinstance(reader, PcapReader):
                tail = _Tail(job, reader.chunk_bytes)
            for table in tables(reader, res, tunnel_depth=seq.depth):
                self.summary.observe(table)
                hide_cut(table)
                for check in self.checks:
                    check.observe(table)
                if tail is None or not tail.take(table):
                    seq.observe(table)
        except InputError as err:
            res.error = str(err)
        if self.record.add(res, span_of(job, reader, res)) and tail is not None:
            tail.give(seq, res.packets)

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
        self.summary.tunnels.update(self.seq.reassembly.tunnel_kinds)  # as scan_one adds them
        res = self.record.res
        return input_findings(res, checks, res.path), self.summary


def assemble(
    jobs: list[list[Job]],
    results: Iterator[Whole | Part],
    progress: Progress | None,
    here: Callable[[Job], bool] = lambda job: False,
) -> ScanResult:
    """Every input's result, from its jobs' results in job order; the jobs `here` says
    are run here instead (Assembler.add_head), and have no result in `results`."""
    with few_collections():  # the replayed trackers hold datagrams as scan_one's do
        return _assemble(jobs, results, progress, here)


def _assemble(
    jobs: list[list[Job]],
    results: Iterator[Whole | Part],
    progress: Progress | None,
    here: Callable[[Job], bool],
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
            assert isinstance(job, RangeJob)
            if here(job):
                asm.add_head(job)
            else:
                part = next(results)
                assert isinstance(part, Part)
                asm.add(unspill(part))
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
