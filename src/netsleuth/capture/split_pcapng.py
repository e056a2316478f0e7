"""Splitting one pcapng file into ranges that start where the one-process reader's buffers
start, each knowing its section: byte order and the interfaces described so far.

A pcapng range cannot be found by resynchronising alone: a packet block names its
interface by a number local to its section (draft-ietf-opsawg-pcapng section 4.1), and
the Interface Description Blocks that give that number a link type, snap length and
clock may lie anywhere earlier in the section (dumpcap writes one when an interface first
appears). So the blocks are walked exactly, from the file's start: by the reader itself
(PcapngReader, with the same buffers (CHUNK_BYTES), the same C walk over block lengths and the
same checks), reading only section and interface blocks, never decoding a packet.

A range starts where one of those buffers starts. A reader that starts there, with the
section's byte order and interfaces as of that point, fills the same buffers as the one-
process reader, walks the same blocks and cuts the same batches: a range's batches are
the one-process reader's own, and so are their frames, issues and timestamps. The
fragment audit, which depends on where batches end (netsleuth/scale/), is replayed from
them directly. Ranges are as fine as one buffer (8 MiB), far below the 32 MiB the planner
asks for.

Cost: the walk reads the file up to the last split once more (one sequential read in
buffer-sized pieces, the C walk over block headers, which reads their fields too):
measured in the issue's note. A corrupt block stops the walk as it stops the reader: no
range starts after it, and the one range holding it reports it as one process does.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.pcapng import Interface, PcapngReader, block_columns
from netsleuth.capture.source import PCAPNG_MAGIC, ByteSource
from netsleuth.capture.split import RangeStream
from netsleuth.errors import InputError


@dataclass(frozen=True, slots=True)
class Section:
    """What a reader entering a section in the middle needs: the byte order of its blocks
    and the interfaces described in it so far (ids are positions in this tuple)."""

    swapped: bool = False
    interfaces: tuple[Interface, ...] = ()
    number: int = 0  # section header blocks before it and its own (PcapngReader.section)
    linux: bool = False  # its header's shb_os names Linux (PcapngReader.linux)


@dataclass(frozen=True, slots=True)
class PcapngRange:
    start: int  # where a one-process reader buffer starts (0: the file's first SHB)
    end: int
    section: Section  # as of `start`
    last: bool = False  # the file's last range: it ends where the file does


class _Done(Exception):  # noqa: N818 - the end of a walk that found enough, not an error
    """Every target has its range start: the rest of the file need not be walked."""


class _Walker(PcapngReader):
    """The one-process reader's walk (same buffers, same block checks), reading only the
    section and interface blocks: at each buffer's start, the section there."""

    def __init__(
        self,
        source: ByteSource,
        targets: list[int],
        on_start: Callable[[int, Section], None] | None = None,
    ) -> None:
        super().__init__(source)
        self.targets = sorted(t for t in targets if t > 0)
        self.on_start = on_start
        self.next = 0  # targets before it have their range start
        self.found: list[tuple[int, Section]] = []
        self.base = -1
        self.state: tuple[bool, list[Interface]] = (False, [])  # after the blocks walked

    def _blocks(
        self,
        buf: NDArray[np.uint8],
        walked: NDArray[np.int64],
        first_frame: int,
        base: int,
    ) -> RecordBatch | None:
        if base != self.base:  # a new buffer: a range may start here
            self.base = base
            self._start_at(base)
        blocks, btype, blen, swapped = block_columns(walked)
        self._structure(buf, blocks, btype, blen, swapped, first_frame, base)
        self.issues.clear()  # the ranges' readers report them; memory stays flat
        # The reader's byte order entering the next walk is its last block's.
        self.state = (bool(swapped[-1]), self.interfaces)
        return None

    def _start_at(self, base: int) -> None:
        passed = bisect.bisect_right(self.targets, base, lo=self.next)
        if passed > self.next and base > 0:
            section = Section(self.state[0], tuple(self.state[1]), self.section, self.linux)
            self.found.append((base, section))
            if self.on_start is not None:
                self.on_start(*self.found[-1])
        self.next = passed
        if self.next == len(self.targets):
            raise _Done


def is_pcapng(path: str) -> bool:
    """An uncompressed pcapng regular file (the only kind split here)."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == PCAPNG_MAGIC
    except OSError:
        return False


def range_starts(
    path: str, targets: list[int], on_start: Callable[[int, Section], None] | None = None
) -> list[tuple[int, Section]]:
    """The first reader buffer start at or after each target (distinct, after the file's
    start), with the section there; targets past the last buffer start are left out.
    `on_start` is told each as soon as the walk finds it."""
    walker = _Walker(ByteSource(path, open(path, "rb")), targets, on_start)  # noqa: SIM115 - closed by batches()
    if not walker.targets:
        walker.source.close()
        return []
    try:
        for _ in walker.batches():
            pass  # _blocks yields nothing: the walk is the point
    except _Done:
        pass
    return walker.found


def split_ranges(
    path: str, targets: list[int], on_range: Callable[[PcapngRange], None] | None = None
) -> list[PcapngRange]:
    """The ranges of an uncompressed pcapng file cut at (or just after) the targets; []
    when it is not one or no cut was found. `on_range` is told each range as soon as the
    walk knows where it ends (the next one's start), so that it can run while the rest of
    the file is walked; the last when the walk ends. Where [] comes back after all (an
    error late in the walk), the ranges told are not to be used."""
    if not targets or not is_pcapng(path):
        return []
    ranges: list[PcapngRange] = []
    at: tuple[int, Section] = (0, Section())

    def found(start: int, section: Section) -> None:
        nonlocal at
        ranges.append(PcapngRange(at[0], start, at[1]))
        at = (start, section)
        if on_range is not None:
            on_range(ranges[-1])

    try:
        range_starts(path, targets, found)
    except (OSError, InputError):
        return []  # read in one piece, which reports it
    if not ranges:
        return []
    ranges.append(PcapngRange(at[0], os.path.getsize(path), at[1], last=True))
    if on_range is not None:
        on_range(ranges[-1])
    return ranges


def range_reader(path: str, start: int, end: int, section: Section) -> PcapngReader:
    """A reader of the blocks in [start, end), which must start where a one-process reader
    buffer starts, in `section`. Its issues carry file offsets; its frame numbers start at
    1 (the caller shifts them)."""
    source = ByteSource(path, RangeStream(path, start, end))
    source.consumed = start  # so that offsets (and the buffers' bases) are the file's
    reader = PcapngReader(source)
    reader.swapped = section.swapped
    reader.interfaces = list(section.interfaces)
    reader.section = section.number
    reader.linux = section.linux
    return reader
