"""Splitting one classic pcap file into record-aligned byte ranges, read apart.

A pcap file has no index: a record boundary at an arbitrary byte offset is found by
resynchronising, i.e. trying each position as a record header (draft-ietf-opsawg-pcap
section 5: seconds, fraction, captured length, original length) and keeping the first
one that is plausible and whose chain of the next CHAIN headers lands exactly, each one
plausible too. Plausible: captured length <= the file's snap length and <= the original
length, original length <= MAXIMUM_SNAPLEN (libpcap's limit, pcap-int.h), the fraction
below one second and the seconds within a year of the first record's.

A false boundary (record-like bytes inside a packet) cannot go unnoticed: the range
before it is walked from a true boundary, and it must end exactly where the next range
starts, without a partial record (netsleuth/scale/ checks; the file is then read in
one piece).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from netsleuth.capture.pcap import (
    MAXIMUM_SNAPLEN,
    PEEK,
    PcapReader,
    RecordLayout,
    max_caplen,
    record_size,
)
from netsleuth.capture.source import PCAP_MAGICS, ByteSource

HEADER = 24  # the file header
RECORD = 16  # a record header
CHAIN = 8  # headers after a candidate that must chain exactly
YEAR_S = 366 * 86400


@dataclass(frozen=True)
class PcapLayout:
    """What resynchronisation needs from the file header and first record."""

    header: bytes
    order: str
    frac_ns: int
    snaplen: int
    first_sec: int | None  # None: no record at all


def layout(path: str) -> PcapLayout | None:
    """The layout of an uncompressed classic pcap file with libpcap's own record headers;
    None for anything else (a variant with longer record headers is read in one piece)."""
    with open(path, "rb") as fh:
        head = fh.read(HEADER + PEEK)
    if len(head) < HEADER or head[:4] not in PCAP_MAGICS:
        return None
    order, frac_ns = PCAP_MAGICS[head[:4]]
    snaplen = struct.unpack(order + "I", head[16:20])[0]
    lay = RecordLayout(order, frac_ns, snaplen, max_caplen(snaplen))
    if record_size(lay, False, head[HEADER:]) != RECORD:
        return None
    first = struct.unpack(order + "I", head[24:28])[0] if len(head) >= HEADER + 4 else None
    return PcapLayout(head[:HEADER], order, frac_ns, snaplen, first)


def _plausible(lay: PcapLayout, rec: bytes) -> int | None:
    """The captured length of a plausible record header, else None."""
    sec, frac, caplen, wirelen = struct.unpack(lay.order + "IIII", rec)
    limit = lay.snaplen if 0 < lay.snaplen <= MAXIMUM_SNAPLEN else MAXIMUM_SNAPLEN
    if caplen > limit or caplen > wirelen or wirelen > MAXIMUM_SNAPLEN:
        return None
    if frac >= 1_000_000_000 // lay.frac_ns:
        return None
    if lay.first_sec is None or abs(sec - lay.first_sec) > YEAR_S:
        return None
    return int(caplen)


def resync(lay: PcapLayout, data: bytes, base: int, size: int) -> int | None:
    """The first file offset at or after `base` (data = the file's bytes from `base`)
    where a plausible record header starts a chain of CHAIN more that lands exactly (or
    ends exactly at the end of the file, `size`)."""
    # A true boundary lies within one largest record of any offset.
    for p in range(min(len(data) - RECORD + 1, RECORD + MAXIMUM_SNAPLEN + 1)):
        pos, ok = p, True
        for _ in range(CHAIN + 1):
            if base + pos == size:
                break
            if pos + RECORD > len(data):
                ok = False
                break
            caplen = _plausible(lay, data[pos : pos + RECORD])
            if caplen is None:
                ok = False
                break
            pos += RECORD + caplen
            if base + pos > size:
                ok = False
                break
        if ok:
            return base + p
    return None


def split_points(path: str, targets: list[int]) -> list[int]:
    """Record boundaries found at or after each target offset (sorted, distinct, inside
    the records area); targets where none is found are left out."""
    lay = layout(path)
    if lay is None:
        return []
    size = os.path.getsize(path)
    window = (CHAIN + 2) * (RECORD + MAXIMUM_SNAPLEN) + (1 << 20)
    found: set[int] = set()
    with open(path, "rb") as fh:
        for t in sorted(targets):
            if t <= HEADER or t >= size:
                continue
            fh.seek(t)
            at = resync(lay, fh.read(window), t, size)
            if at is not None and HEADER < at < size:
                found.add(at)
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Span:
    """Where a range's reader read in its file: from `start` to `end`, and whether the
    file's reading ends there (`final`: its end, or an issue that stops the reader). No
    `start`: the range starts past where the file's reading ends (a pcapng range whose
    walk found no start: capture/split_pcapng.py); it read nothing."""

    start: int | None
    end: int
    final: bool


class RangeStream:
    """The bytes [start, end) of a file, as a ByteSource stream."""

    def __init__(self, path: str, start: int, end: int) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115  (closed by close(), as a stream)
        self._fh.seek(start)
        self._left = end - start

    def read(self, n: int = -1, /) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        out = self._fh.read(n)
        self._left -= len(out)
        return out

    def readinto(self, b: memoryview, /) -> int | None:
        view = memoryview(b).cast("B")[: self._left]
        got = self._fh.readinto(view) or 0
        self._left -= got
        return got

    def close(self) -> None:
        self._fh.close()


def range_reader(path: str, header: bytes, start: int, end: int) -> PcapReader:
    """A reader of the records in [start, end), which must start at a record boundary.
    Its issues carry file offsets; its frame numbers start at 1 (the caller shifts them).
    Its records have libpcap's 16-byte headers, as layout() found for the whole file: the
    range's own first records are not asked again (a peek of 1 MiB, and a corrupt record
    there could make them read as a variant's)."""
    source = ByteSource(path, RangeStream(path, start, end), header)
    source.consumed = start - len(header)  # so that offsets are the file's
    return PcapReader(source, record=RECORD)
