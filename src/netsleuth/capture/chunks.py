"""Streaming a byte source through fixed-size NumPy buffers: memory stays flat."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.batch import PAD, RecordBatch
from netsleuth.capture.source import ByteSource

# A batch is what one buffer holds, at most MAX_RECORDS records: the decoders and checks
# cost a fixed ~0.5 ms a batch (small NumPy calls, allocations) beside their per-record
# work, and a batch's decoded columns (~100 bytes a record) must stay near the cache. So
# a batch is bounded in both bytes and records. Measured in one process, best of 4 (session
# 16, `scan()`, 1M packets): the mix of ~515-byte records 0.46 s at 4 MiB (8,000 records a
# batch), 0.39-0.40 s at 8 MiB, 0.43 s at 16 MiB; a flood of 114-byte fragments 0.28 s at
# 4 MiB (36,800 records), 0.28 s at 8 MiB and 40,000 records, 0.31-0.32 s at 8 MiB and
# 32,768 or 65,536 records, 0.43 s at 4 MiB and 16,384; overlapping trains of 94-byte
# records 0.47 s at 4 MiB, 0.45 s at 8 MiB and 40,000. Earlier decoders were fastest at
# 4 MiB (16 MiB: 1.15 s, 4 MiB: 0.75 s, 1 MiB: 1.8 s). Two live buffers are far below the
# 300 MB peak-RSS bar.
CHUNK_BYTES = 8 << 20
# Records per batch at most (the walk stops and resumes when the offsets array is full).
MAX_RECORDS = 40_000


@dataclass(frozen=True, slots=True)
class ReadIssue:
    """Something wrong with the file itself, reported as a finding (not an exception)."""

    id: str  # a finding id: capture.truncated_file or capture.corrupt_record
    offset: int  # byte offset in the (decompressed) file of the first record concerned
    frame: int  # the frame number that record has (or would have had)
    message: str  # "{n}" in it stands for `count`, "{lost}" for `lost` (summary)
    # Whether the reader stopped there (the rest of the file unread), or skipped or mended
    # what was wrong and read on: a split file's range that stopped short is read again
    # in one piece (scale.SplitRecord).
    stops: bool = True
    count: int = 1  # records (or blocks) concerned: add_issue adds up issues of one kind
    lost: int = 0  # packets the capture says it lost (capture.capture_loss), added up too

    @property
    def summary(self) -> str:
        return self.message.replace("{n}", f"{self.count:,}").replace("{lost}", f"{self.lost:,}")


def add_issue(issues: list[ReadIssue], issue: ReadIssue) -> None:
    """Append `issue`, or add its count to the earlier one of the same id and message
    that did not stop the reader either: one finding per kind of fault in an input, not
    one per reader buffer it showed in (52 alike on a 210 MB pcapng file whose clock was
    shifted), and the same however the file is split (the earlier keeps its offset and
    frame: the first record concerned)."""
    if not issue.stops:
        for k, old in enumerate(issues):
            if not old.stops and (old.id, old.message) == (issue.id, issue.message):
                issues[k] = replace(old, count=old.count + issue.count, lost=old.lost + issue.lost)
                return
    issues.append(issue)


class Chunker:
    """Hands out buffers of file bytes; the unconsumed tail of one starts the next."""

    def __init__(self, source: ByteSource, capacity: int = CHUNK_BYTES) -> None:
        self.source = source
        self.capacity = capacity
        self.base = source.consumed  # file offset of buf[0]
        self.buf: NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        self.have = 0
        self.eof = False

    def refill(self, keep_from: int, step: Callable[[], None]) -> None:
        """Start a new buffer holding buf[keep_from:have] and as much more as fits, read in
        pieces of STEP bytes: step() after each piece, to walk the records in it while they
        are in the CPU's cache (a walk of the whole 8 MiB after the read found its headers
        in memory: 0.08 s a million records, against 0.01 s piece by piece).

        A fresh array each time: batches handed out earlier keep pointing at their own bytes.
        """
        carry = self.have - keep_from
        new = np.empty(self.capacity + PAD, dtype=np.uint8)
        if carry:
            new[:carry] = self.buf[keep_from : self.have]
        self.base += keep_from
        self.buf, self.have = new, carry
        self.eof = carry >= self.capacity  # no room: a read of nothing, as at the end
        while self.have < self.capacity and not self.eof:
            want = min(self.capacity - self.have, STEP)
            got = self.source.read_into(new, self.have, want)
            self.have += got
            self.eof = got < want  # read_into stops short only at the stream's end
            if got:
                step()
        new[self.have :] = 0


# The piece a buffer is read in (Chunker.refill): well inside the CPU's L2 cache.
STEP = 256 << 10


def note_stream_cut(source: ByteSource, issues: list[ReadIssue], next_frame: int) -> None:
    """A compressed stream that ended early, exactly between two records, leaves no partial
    record behind: say so anyway, the file is still truncated."""
    if source.stream_error and not any(i.id == "capture.truncated_file" for i in issues):
        issues.append(
            ReadIssue(
                "capture.truncated_file",
                source.consumed,
                next_frame,
                f"the compressed stream ended early ({source.stream_error})",
            )
        )


ST_NEED_MORE, ST_OUT_FULL, ST_BAD_LENGTH = 0, 1, 2  # a walk's status (capture/_framing.c)


class Walk:
    """A walk over the current buffer, picked up where it stopped as more of the buffer
    arrives (Chunker.refill's step): walk(pos, at) lists the records from `pos`, writing
    them from column `at` of its output (count, where it stopped, status)."""

    def __init__(self, walk: Callable[[int, int], tuple[int, int, int]]) -> None:
        self.walk = walk
        self.pos = self.n = 0  # where the next record starts; records listed in the output
        self.status = ST_NEED_MORE

    def step(self) -> None:
        """Walk on while the walk only waited for more bytes: another status (a full
        output, a refused record) stands until the caller has dealt with it."""
        if self.status == ST_NEED_MORE:
            self.go()

    def go(self) -> None:
        n, self.pos, self.status = self.walk(self.pos, self.n)
        self.n += n


def walked(
    ch: Chunker,
    walk: Callable[[int, int], tuple[int, int, int]],
    batch: Callable[[int, int], RecordBatch],
    corrupt: Callable[[int, int], ReadIssue],
    issues: list[ReadIssue],
) -> Iterator[RecordBatch]:
    """The loop of the formats whose records one C walk finds (pcap, ERF): walk(pos, at)
    lists the records from `pos` in the current buffer (count, where it stopped, status),
    from column `at` of its output; batch(n, frame) makes the batch of the n listed, the
    first numbered `frame`; corrupt(pos, frame) names a record the walk refused, which
    stops the read. A record the data ends inside is a cut file. Each buffer is walked as
    its pieces arrive (Walk); the records listed, and so the batches, are those of one
    walk over the whole buffer."""
    w = Walk(walk)
    ch.refill(0, w.step)
    frame = 1
    while True:
        w.go()  # the rest of the buffer, or at once where the walk stopped
        if w.n:
            yield batch(w.n, frame)
            frame += w.n
        w.n = 0
        if w.status == ST_BAD_LENGTH:
            issues.append(corrupt(w.pos, frame))
            return
        if w.status == ST_OUT_FULL:
            w.status = ST_NEED_MORE
            continue
        if ch.eof:
            if w.pos < ch.have:
                issues.append(
                    ReadIssue(
                        "capture.truncated_file",
                        ch.base + w.pos,
                        frame,
                        f"the file ends inside record {frame} "
                        f"({ch.have - w.pos} bytes of it present)",
                    )
                )
            return
        keep, w.pos = w.pos, 0
        ch.refill(keep, w.step)


MAX_DROP_KEYS = 4096  # interfaces whose statistics are kept (memory stays bounded)


class DropCounts:
    """Per (section, interface): the packets its capture statistics say were dropped
    (totals since the capture started: the latest block counts), the last frame before
    those statistics and their byte offset.

    At most MAX_DROP_KEYS interfaces, the smallest keys: that subset does not depend on
    the order keys come in, so the ranges of a split file, joined in order (merge), keep
    exactly what one reader of the whole file keeps. `bounded` says some were left out."""

    def __init__(self) -> None:
        self.items: dict[tuple[int, int], tuple[int, int, int]] = {}
        self._largest: list[tuple[int, int]] = []  # a max-heap of the keys (negated)
        self.bounded = False

    def put(self, key: tuple[int, int], value: tuple[int, int, int]) -> None:
        if key not in self.items:
            if len(self.items) >= MAX_DROP_KEYS:
                self.bounded = True
                top = (-self._largest[0][0], -self._largest[0][1])
                if key > top:
                    return
                heapq.heappop(self._largest)
                del self.items[top]
            heapq.heappush(self._largest, (-key[0], -key[1]))
        self.items[key] = value

    def merge(self, other: DropCounts, frames: int) -> None:
        """Add a later part of the same input, its frames `frames` after this one's."""
        for key, (n, frame, offset) in other.items.items():
            self.put(key, (n, frame + frames, offset))
        self.bounded |= other.bounded


class StreamReader:
    """What the capture formats share: streaming, closing, and noting a cut stream.

    Subclasses read their file header in __init__ (after this one's) and implement
    _batches().
    """

    def __init__(self, source: ByteSource, *, compressed: bool = False) -> None:
        self.source = source
        self.compressed = compressed
        self.name = source.name
        self.issues: list[ReadIssue] = []
        self.records = 0
        self.drops = DropCounts()  # pcapng's interface statistics (PcapngReader._isb)

    def batches(self) -> Iterator[RecordBatch]:
        """Stream the records; the source is closed when the iteration ends, however."""
        try:
            for batch in self._batches():
                self.records += len(batch)
                yield batch
        finally:
            self.source.close()
        note_stream_cut(self.source, self.issues, self.records + 1)

    def frames_read(self) -> int:
        """Frame numbers used so far: one a record, except where a format numbers blocks
        that hold no packet as frames too (pcapng)."""
        return self.records

    def _batches(self) -> Iterator[RecordBatch]:
        raise NotImplementedError
