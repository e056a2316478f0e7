"""Splitting one pcapng file into ranges that start where the one-process reader's buffers
start, each entered in its section: byte order and the interfaces described so far.

A pcapng range cannot be found by resynchronising alone: a packet block names its
interface by a number local to its section (draft-ietf-opsawg-pcapng section 4.1), and
the Interface Description Blocks that give that number a link type, snap length and
clock may lie anywhere earlier in the section (dumpcap writes one when an interface first
appears). So the blocks are walked exactly: by the reader itself (PcapngReader, with the
same buffers (CHUNK_BYTES), the same C walk over block lengths and the same checks),
reading only section and interface blocks, never decoding a packet.

A range is asked for by two offsets, targets: it starts at the first of those buffers that
starts at or after the first target, and ends where the first one at or after the second
starts (PcapngReader.stop_at), or at the file's end. A reader that starts there, with the
section's byte order and interfaces as of that point, fills the same buffers as the one-
process reader, walks the same blocks and cuts the same batches: a range's batches are
the one-process reader's own, and so are their frames, issues and timestamps. The
fragment audit, which depends on where batches end (netsleuth/scale/), is replayed from
them directly. Ranges are as fine as one buffer (8 MiB), far below the 32 MiB the planner
asks for.

Where a range starts is found where it is read (find_start, in the worker), not before
any range starts: the parent reads the file's first range at once while a worker walks
to the next one's start. A worker remembers where the ranges it read ended (each the
next range's start) and the starts it walked to, and walks from the nearest of them. So
the walk costs one sequential read of the file up to a worker's first range (one read in
buffer-sized pieces and the C walk over block headers: ~0.09 s for 400 MB here), in
parallel with the other workers' reading. A corrupt block stops the walk as it stops the
reader: no range starts after it, and the range holding it reports it as one process
does (scale.SplitRecord: the ranges after it are empty).
"""

from __future__ import annotations

import bisect
import os
import pickle
import sys
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.pcapng import PcapngReader, Section, block_columns, first_section_fault
from netsleuth.capture.source import PCAPNG_MAGIC, ByteSource
from netsleuth.capture.split import RangeStream
from netsleuth.errors import InputError

__all__ = [
    "Section",
    "find_start",
    "forget",
    "is_pcapng",
    "range_reader",
    "range_starts",
    "remember",
]


class _Walker(PcapngReader):
    """The one-process reader's walk (same buffers, same block checks), reading only the
    section and interface blocks: at each buffer's start, the section there."""

    def __init__(self, source: ByteSource, targets: list[int]) -> None:
        super().__init__(source)
        self.targets = sorted(t for t in targets if t > 0)
        self.next = 0  # targets before it have their range start
        self.found: list[tuple[int, Section]] = []

    def _blocks(
        self,
        buf: NDArray[np.uint8],
        walked: NDArray[np.int64],
        first_frame: int,
        base: int,
    ) -> RecordBatch | None:
        blocks, btype, blen, swapped = block_columns(walked)
        self._structure(buf, blocks, btype, blen, swapped, first_frame, base)
        self.issues.clear()  # the ranges' readers report them; memory stays flat
        return None

    def _entering(self, base: int) -> bool:
        passed = bisect.bisect_right(self.targets, base, lo=self.next)
        if passed > self.next and base > 0:
            self.found.append((base, self.state()))
        self.next = passed
        return self.next == len(self.targets)  # every target has its start: stop


def is_pcapng(path: str) -> bool:
    """An uncompressed pcapng regular file (the only kind split here) whose first section
    header can be read: one that cannot is refused whole (capture.open_capture), not read
    in ranges that would each find nothing."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[:4] == PCAPNG_MAGIC and first_section_fault(head) is None


def range_starts(
    path: str, targets: list[int], *, since: tuple[int, Section] = (0, Section())
) -> list[tuple[int, Section]]:
    """The first reader buffer start at or after each target (distinct, after the file's
    start), with the section there; targets past the last buffer start are left out.
    The walk begins at `since`, a buffer start known with its section (the file's start
    by default)."""
    walker = _Walker(_source(path, since[0]), targets)
    walker.enter(since[1])
    if not walker.targets:
        walker.source.close()
        return []
    for _ in walker.batches():
        pass  # _blocks yields nothing: the walk is the point
    return walker.found


def range_reader(
    path: str, start: int, section: Section, stop_at: int | None = None
) -> PcapngReader:
    """A reader from `start`, which must be where a one-process reader buffer starts, in
    `section`, up to the first such start at or after `stop_at` (None: to the file's end;
    reader.stopped says where it stopped). Its issues carry file offsets; its frame
    numbers start at 1 (the caller shifts them)."""
    reader = PcapngReader(_source(path, start))
    reader.enter(section)
    reader.stop_at = stop_at
    return reader


def _source(path: str, start: int) -> ByteSource:
    """The file's bytes from `start` to its end, with offsets (and the buffers' bases)
    the file's."""
    source = ByteSource(path, RangeStream(path, start, sys.maxsize))
    source.consumed = start
    return source


# ----- where ranges start, found in the processes that read them ---------------------------
def find_start(path: str, target: int, shared: str | None = None) -> tuple[int, Section] | None:
    """The first one-process reader buffer start at or after `target` (> 0) and the
    section there; None where the file's reading ends before one (its end, a corrupt
    block, or the file gone or unreadable: the range before reports it). Walked from the
    nearest start known in the file: to this process (remember), or to the others that
    share the folder `shared` (each walks the stretch before its own range once, not the
    whole file before it again)."""
    try:
        known = _known(path)
        if shared is not None:
            known.load(shared, target)
        for t, found in known.resolved.items():
            if t <= target <= found[0]:  # no buffer starts in [t, found)
                return found
        since = max((p for p in known.points if p[0] <= target), key=lambda p: p[0])
        got = range_starts(path, [target], since=since)
    except (OSError, InputError):
        return None  # the range before reports what stops the reading
    if not got:
        return None
    remember(path, target, *got[0], shared=shared)
    return got[0]


def remember(
    path: str, target: int, start: int, section: Section, *, shared: str | None = None
) -> None:
    """`start` (with `section` there) is the first buffer start at or after `target`:
    where a range's reader stopped (PcapngReader.stopped), or a walk found; told to the
    processes sharing the folder `shared` too."""
    try:
        known = _known(path)
        known.add(target, start, section)
        if shared is not None:
            _publish(shared, target, start, section)
    except OSError:
        return  # gone, or the folder is: the ranges walk further


class _Known:
    """Where ranges start in one file, as far as this process knows."""

    def __init__(self) -> None:
        self.resolved: dict[int, tuple[int, Section]] = {}  # target -> its range start
        self.points: list[tuple[int, Section]] = [(0, Section())]  # where a walk may begin

    def add(self, target: int, start: int, section: Section) -> None:
        if target in self.resolved:
            return
        self.resolved[target] = (start, section)
        self.points.append((start, section))
        while len(self.resolved) > KNOWN_STARTS:
            self.resolved.pop(next(iter(self.resolved)))
            del self.points[1]  # the file's start stays

    def load(self, shared: str, target: int) -> None:
        """Of what the other processes have told in `shared` (a file a target, written
        whole by _publish: os.replace), the start of the greatest target up to `target`:
        the nearest place to walk from, or `target`'s own start. One file, not all: a
        section holds up to MAX_INTERFACES interfaces."""
        told = [int(n) for n in os.listdir(shared) if n.isdigit()] if os.path.isdir(shared) else []
        best = max((t for t in told if t <= target), default=None)
        if best is None or best in self.resolved:
            return
        with open(os.path.join(shared, str(best)), "rb") as fh:
            start, section = pickle.load(fh)  # our own workers' (_publish)
        self.add(best, start, section)


def _publish(shared: str, target: int, start: int, section: Section) -> None:
    os.makedirs(shared, exist_ok=True)
    name = os.path.join(shared, str(target))
    tmp = f"{name}.{os.getpid()}"
    with open(tmp, "wb") as fh:
        pickle.dump((start, section), fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, name)


# Starts kept a file, and files: a Section holds its interfaces (up to MAX_INTERFACES).
KNOWN_STARTS = 8
KNOWN_FILES = 8
_KNOWN: OrderedDict[tuple[str, int, int, int, int, int], _Known] = OrderedDict()


def forget() -> None:
    """Forget every start known: a scan's first thing (scale.scan_parallel,
    steer_parallel), so that what it finds is its files' as they are now. Within a scan
    its workers tell each other through the shared folder."""
    _KNOWN.clear()


def _known(path: str) -> _Known:
    """What this process knows of the file's starts; nothing once the file has changed
    (its inode's change time moves with any write, and with a modification time set back,
    as cp -p, rsync -t and tar x set it)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _KNOWN:
        _KNOWN[key] = _Known()
        while len(_KNOWN) > KNOWN_FILES:
            _KNOWN.popitem(last=False)
    _KNOWN.move_to_end(key)
    return _KNOWN[key]
