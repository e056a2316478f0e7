"""What a range's worker hands the parent: each record's end and timestamp, and the records
that hold a fragment, written to files the parent maps (or kept in memory)."""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.batch import PAD, RecordBatch
from netsleuth.decode.table import PacketTable


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
    # Where each was seen (RecordBatch.direction and iface; 0 where the format does not
    # say): fragment keys hold it.
    direction: NDArray[np.uint8]
    iface: NDArray[np.uint32]
    # The octets of FCS each record's capture declares (RecordBatch.fcs_len; 0 where none):
    # the decoder leaves them out of the payload, here as in one process.
    fcs_len: NDArray[np.int8]
    data: NDArray[np.uint8]

    @classmethod
    def of(cls, fields: Sequence[NDArray[Any]], data: NDArray[np.uint8]) -> Frags:
        """From the FRAG_FIELDS columns, in order, and the bytes."""
        frame, pos, caplen, wirelen, ts_ns, linktype, direction, iface, fcs_len = fields
        return cls(frame, pos, caplen, wirelen, ts_ns, linktype, direction, iface, fcs_len, data)

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
            direction=self.direction,
            iface=self.iface,
            fcs_len=self.fcs_len if self.fcs_len.any() else None,
            # wire: left False. Only pcap and pcapng files are cut into ranges (worker.py:
            # open_range), never an ERF file.
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
    """The first `nbytes` of an array mapped from the start of a file (mapped): their
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
    MB on a range of small fragments); the parent maps the files (unspill). Without (a
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
        n = rows.shape[0]
        direction = np.zeros(n, np.uint8) if b.direction is None else b.direction[rows]
        iface = np.zeros(n, np.uint32) if b.iface is None else b.iface[rows]
        fcs_len = np.zeros(n, np.int8) if b.fcs_len is None else b.fcs_len[rows]
        fields: list[NDArray[Any]] = [
            b.frame[rows], pos, cap, b.wirelen[rows], b.ts_ns[rows], b.linktype[rows],
            np.ascontiguousarray(direction), np.ascontiguousarray(iface), fcs_len,
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
_NARROW = {"linktype": np.int32, "direction": np.uint8, "iface": np.uint32, "fcs_len": np.int8}
COLUMN_TYPES = [np.dtype(_NARROW.get(c, np.int64)) for c in COLUMNS]
HANDOVER_TYPES = [*COLUMN_TYPES, np.dtype(np.uint8)]  # and the fragments' bytes


COLUMN_FILE = "column-{}"  # in a spilled range's folder, one per array of COLUMNS
DATA_FILE = "fragments"  # and its fragments' bytes


# the pool's pipe: measured, the pipe's 64 KiB writes cost ~0.1 s a range on a busy machine.
def job_dir(root: str, name: int | str) -> str:
    path = os.path.join(root, str(name))
    os.mkdir(path)
    return path


def mapped(path: str, dtype: np.dtype[Any], *, read: bool = False) -> NDArray[Any]:
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
