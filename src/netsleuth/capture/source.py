"""Opening a capture: a path, a gzip-compressed file or `-` for stdin, sniffed by magic (or,
for ERF, which has none, by its first records)."""

from __future__ import annotations

import io
import sys
import zlib
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
from numpy.typing import NDArray

from netsleuth.errors import InputError, NotACaptureError

GZIP_MAGIC = b"\x1f\x8b"
PCAP_MAGICS = {
    # libpcap savefile magics (draft-ietf-opsawg-pcap section 4): microsecond and nanosecond
    # timestamps, written in the capturing host's byte order.
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
# Alexey Kuznetsov's patched libpcap (ss990915, ss991029): the same file header, record
# headers with fields appended (wiretap/libpcap.h); microsecond timestamps.
MODIFIED_PCAP_MAGICS = {b"\x34\xcd\xb2\xa1": "<", b"\xa1\xb2\xcd\x34": ">"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
SNOOP_MAGIC = b"snoo"  # the first 4 bytes of "snoop\0\0\0" (RFC 1761): capture/snoop.py


class Stream(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...

    def readinto(self, b: memoryview, /) -> int | None: ...

    def close(self) -> None: ...


SKIP_PIECE = 1 << 20  # ByteSource.skip's buffer


class ByteSource:
    """A forward-only byte stream with a peeked prefix, reading into NumPy buffers.

    Works the same for regular files, gzip streams and pipes, none of which need to seek.
    """

    def __init__(self, name: str, stream: Stream, prefix: bytes = b"") -> None:
        self.name = name
        self._stream = stream
        self._prefix = prefix
        self.consumed = 0  # bytes handed out so far: the file offset of the next byte
        # Set when a compressed stream ends before its end marker: the bytes before were
        # delivered and the reader reports the file as truncated.
        self.stream_error: str | None = None

    def read_into(self, buf: NDArray[np.uint8], start: int, n: int) -> int:
        """Fill buf[start:start+n] as far as the stream allows; return bytes read."""
        got = 0
        if self._prefix:
            take = min(n, len(self._prefix))
            buf[start : start + take] = np.frombuffer(self._prefix[:take], dtype=np.uint8)
            self._prefix = self._prefix[take:]
            got = take
        view = memoryview(buf.data).cast("B")[start + got : start + n]
        while got < n:
            try:
                r = self._stream.readinto(view)
            except EOFError as err:
                self.stream_error = str(err)
                break
            except (OSError, zlib.error) as err:
                raise InputError(
                    self.name, f"read failed: {err}", offset=self.consumed + got
                ) from err
            if not r:
                break
            got += r
            view = view[r:]
        self.consumed += got
        return got

    def read(self, n: int) -> bytes:
        buf = np.empty(n, dtype=np.uint8)
        got = self.read_into(buf, 0, n)
        return buf[:got].tobytes()

    def skip(self, n: int) -> int:
        """Read past `n` bytes, SKIP_PIECE at a time (never all of them in memory); return
        how many there were before the stream's end."""
        piece = np.empty(min(n, SKIP_PIECE), dtype=np.uint8)
        done = 0
        while done < n:
            want = min(n - done, SKIP_PIECE)
            got = self.read_into(piece, 0, want)
            done += got
            if got < want:  # read_into stops short only at the stream's end
                break
        return done

    def peek(self, n: int) -> bytes:
        """Up to `n` bytes, left to be read again (a pipe cannot seek back)."""
        data = self.read(n)
        self._prefix = data + self._prefix
        self.consumed -= len(data)
        return data

    def close(self) -> None:
        if self._stream is not sys.stdin.buffer:
            self._stream.close()


@dataclass(frozen=True, slots=True)
class Sniffed:
    source: ByteSource
    kind: str  # "pcap", "pcapng", "snoop" or "erf"
    compressed: bool


def describe_bytes(head: bytes) -> str:
    """Name what a non-capture file starts with, for the one-line error."""
    if not head:
        return "the file is empty"
    hexpart = " ".join(f"{b:02x}" for b in head[:8])
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head[:64])
    if printable == len(head[:64]):
        text = head[:16].decode("ascii", "replace").replace("\n", "\\n").replace("\r", "\\r")
        return f"it starts with text {text!r} ({hexpart}), not pcap/pcapng magic or ERF records"
    return f"it starts with bytes {hexpart}, not pcap/pcapng/gzip magic or ERF records"


def open_source(path: str) -> Sniffed:
    """Open `path` (or stdin for "-"), unwrap gzip, and identify the capture format."""
    name = "<stdin>" if path == "-" else path
    raw: Stream
    if path == "-":
        if sys.stdin is None:  # started with stdin closed (`<&-`)
            raise InputError(name, "stdin is closed: pipe a capture in, or name a file")
        raw = cast(Stream, sys.stdin.buffer)
    else:
        try:
            raw = cast(Stream, open(path, "rb"))  # noqa: SIM115 - closed by ByteSource.close
        except OSError as err:
            raise InputError(name, err.strerror or str(err)) from err
    head = _peek(name, raw, 4)
    compressed = head[:2] == GZIP_MAGIC
    stream: Stream = raw
    if compressed:
        stream = GzipStream(_Prefixed(head, raw))
        head = _peek(name, stream, 4)
    if head in PCAP_MAGICS or head in MODIFIED_PCAP_MAGICS:
        kind = "pcap"
    elif head == PCAPNG_MAGIC:
        kind = "pcapng"
    elif head == SNOOP_MAGIC:
        kind = "snoop"
    else:
        source = ByteSource(name, stream, head)
        try:
            more = source.peek(ERF_PEEK)
        except InputError:
            source.close()
            raise
        why = erf_refusal(more) if more else describe_bytes(more)
        if why is None:
            return Sniffed(source, "erf", compressed)
        source.close()
        what = "after gzip decompression, " if compressed else ""
        raise NotACaptureError(name, f"not a capture file: {what}{why}")
    return Sniffed(ByteSource(name, stream, head), kind, compressed)


def _peek(name: str, stream: Stream, n: int) -> bytes:
    out = b""
    try:
        while len(out) < n:
            chunk = stream.read(n - len(out))
            if not chunk:
                break
            out += chunk
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(name, f"read failed: {err}") from err
    return out


class GzipStream:
    """Streaming gzip inflater (RFC 1952) that keeps every byte it could recover.

    gzip.GzipFile discards the output of a read call when the stream turns out to be cut
    short; a truncated .pcap.gz must still yield the packets before the cut. Concatenated
    members (RFC 1952 section 2.2) are read one after the other, and zero bytes after the
    last one ignored (_past_zeros). Compressed data that zlib refuses (a bad CRC-32 or
    length in a member's trailer, corrupt deflate data, bytes after the last member that
    start no member) ends the stream there as a cut does, after what inflated before it.
    """

    IN_CHUNK = 1 << 16
    # Where a piece of input turns out corrupt, it is inflated again a byte at a time
    # (_salvage: 64K calls, a few ms), so that no output before the fault is lost; at most
    # SALVAGE_MAX bytes of it (a byte of deflate data inflates to ~1,000 at most).
    SALVAGE_MAX = 8 << 20

    def __init__(self, raw: Stream) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(wbits=31)
        self._out = bytearray()
        self._eof = False
        self._cut = False  # input ended inside a member: raise once the output is drained
        self._why = "compressed file ended before the end-of-stream marker"

    def read(self, n: int = -1, /) -> bytes:
        while (n < 0 or len(self._out) < n) and not self._eof:
            self._fill()
        if not self._out and self._cut:
            self._cut = False
            raise EOFError(self._why)
        if n < 0:
            n = len(self._out)
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def readinto(self, b: memoryview, /) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _fill(self) -> None:
        if self._z.eof:  # a member ended: another may follow
            rest = self._z.unused_data or self._raw.read(self.IN_CHUNK)
            rest = self._past_zeros(rest)
            if not rest:
                self._eof = True
                return
            self._z = zlib.decompressobj(wbits=31)
            self._inflate(rest)
            return
        chunk = self._z.unconsumed_tail or self._raw.read(self.IN_CHUNK)
        if not chunk:
            self._eof = True
            self._cut = True
            return
        self._inflate(chunk)

    def _past_zeros(self, rest: bytes) -> bytes:
        """What follows a member once the zero bytes after it are read past: b"" when only
        zeros follow, the padding a tape or a block device writer leaves (GNU gzip says
        "decompression OK, trailing zero bytes ignored"), not a cut file."""
        while rest and not rest.strip(b"\0"):
            rest = self._raw.read(self.IN_CHUNK)
        return rest.lstrip(b"\0")

    def _inflate(self, data: bytes) -> None:
        before = self._z.copy()
        try:
            self._out += self._z.decompress(data, self.IN_CHUNK * 8)
        except zlib.error as err:
            # zlib gives no output from a call that fails: the bytes that inflated before
            # the fault in `data` would be lost with it (a .pcap.gz whose trailer's CRC is
            # wrong lost every packet of its last 64 KiB, all of them in a small file).
            self._z = before
            self._salvage(data)
            self._eof = self._cut = True
            self._why = f"corrupt compressed data: {err}"

    def _salvage(self, data: bytes) -> None:
        """Inflate `data` a byte at a time up to the one zlib refuses."""
        got = 0
        for k in range(len(data)):
            try:
                out = self._z.decompress(data[k : k + 1], self.SALVAGE_MAX - got)
            except zlib.error:
                return
            self._out += out
            got += len(out)
            if got >= self.SALVAGE_MAX or self._z.eof:
                return

    def close(self) -> None:
        if self._raw is not sys.stdin.buffer:
            self._raw.close()


class _Prefixed(io.RawIOBase):
    """A stream that replays already-peeked bytes before the rest (stdin cannot seek)."""

    def __init__(self, prefix: bytes, rest: Stream) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    # io.RawIOBase types its argument as a writable buffer; the readers pass memoryviews.
    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._rest.readinto(b) or 0

    def close(self) -> None:
        if self._rest is not sys.stdin.buffer:
            self._rest.close()
        super().close()


# ----- ERF: no magic, so its first records are looked at (capture/erf.py) -----------------
ERF_HEADER = 16
ERF_PAD = 48  # PAD records: skipped, their timestamps may not be set
ERF_ETH_TYPES = (2, 11, 16, 20)  # ETH, COLOR_ETH, DSM_COLOR_ETH, COLOR_HASH_ETH
# Subheader bytes before the captured ones (as _framing.c's walk_erf): Ethernet's offset
# and pad; the multichannel types' and AAL2's 4.
ERF_SUBHEADER = {
    **dict.fromkeys(ERF_ETH_TYPES, 2),
    **dict.fromkeys((5, 6, 7, 8, 9, 12, 17, 18), 4),
}
ERF_CHECK = 20  # records looked at, PAD records among them (RECORDS_FOR_ERF_CHECK)
ERF_MIN = 3  # MIN_RECORDS_FOR_ERF_CHECK: a file cut before is no ERF file
ERF_PEEK = ERF_CHECK * 0xFFFF  # room for ERF_CHECK records of the largest record length
_YEAR = 365 * 24 * 3600


def erf_refusal(data: bytes) -> str | None:
    """None when a file starting with `data` (its first ERF_PEEK bytes, or all of it) is an
    ERF file by Wireshark's test (wiretap/erf.c: erf_open), else why not, for the one-line
    error. Wireshark looks at the first 20 records, PAD records among them, and takes the
    file for no ERF at all when one has a record length below its 16-byte header, or is no
    PAD record and has type 0 (the legacy type; every other one is taken, an unknown one
    read as a record not decoded), a timestamp back more than 1 in its seconds field (the
    64-bit difference shifted by 32) or on more than a year from the last such record's,
    or extension headers or a subheader that its length or the file does not hold; and
    when the file ends inside one of the first 3 records. The file ending after those, or
    between records, ends the test: it is ERF, and the reader names a cut. `data` holds
    the 20 records whenever the file does (ERF_PEEK). (An empty file, an ERF file of no
    records to Wireshark, is none here: the caller says it is empty.)"""
    pos, prev = 0, -1
    for i in range(ERF_CHECK):
        if pos >= len(data):  # the file ends between records (or inside a PAD record's)
            return None
        if len(data) - pos < ERF_HEADER:
            return None if i >= ERF_MIN else describe_bytes(data)
        rlen = int.from_bytes(data[pos + 10 : pos + 12], "big")
        if rlen < ERF_HEADER:
            return _erf_refused(data, i, f"has a record length of {rlen}, below its header's 16")
        if data[pos + 8] & 0x7F != ERF_PAD:
            why = _erf_record_refusal(data, pos, rlen, prev)
            if why is not None:
                return _erf_refused(data, i, why)
            prev = int.from_bytes(data[pos : pos + 8], "little")
        if pos + rlen > len(data) and i < ERF_MIN:
            return describe_bytes(data)
        pos += rlen
    return None


def _erf_record_refusal(data: bytes, pos: int, rlen: int, prev: int) -> str | None:
    """Why the record at `pos` (no PAD record) is no ERF record to Wireshark's test, or None;
    `prev`: the timestamp of the last record before it that is no PAD record (-1: none)."""
    kind = data[pos + 8]
    ts = int.from_bytes(data[pos : pos + 8], "little")
    if kind & 0x7F == 0:
        return "has type 0 (the legacy type)"
    if prev >= 0 and ts < prev and (prev - ts) >> 32 > 1:
        return "has a timestamp more than a second before the previous record's"
    if prev >= 0 and ts > prev and (ts - prev) >> 32 > _YEAR:
        return "has a timestamp more than a year after the previous record's"
    skip, more = ERF_HEADER, kind & 0x80
    while more:
        if skip + 8 > rlen or pos + skip + 8 > len(data):
            return "has extension headers that its length or the file does not hold"
        more = data[pos + skip] & 0x80
        skip += 8
    sub = ERF_SUBHEADER.get(kind & 0x7F, 0)
    if skip + sub > rlen or pos + skip + sub > len(data):
        return "has a subheader that its length or the file does not hold"
    return None


def _erf_refused(data: bytes, i: int, why: str) -> str:
    """The error for a file whose record i + 1 fails the test: past ERF_MIN good records,
    what was wrong with it; before, what the file starts with."""
    if i < ERF_MIN:
        return describe_bytes(data)
    return (
        f"records 1-{i} read as ERF, but record {i + 1} {why}, which Wireshark's test of "
        f"an ERF file's first {ERF_CHECK} records refuses"
    )
