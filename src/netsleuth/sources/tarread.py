"""A bounded, streaming reader of tar archives (plain or gzip), for bundles.

tarfile keeps a TarInfo per member (2M empty members: gigabytes), reads a GNU long name or a
pax header whole whatever its declared size, and seeks through gzip. Here every quantity an
archive declares is capped before it is honoured: the members counted, a long name or pax
header (MAX_HEADER), a file (the caller's cap: larger ones are skipped), and the bytes
decompressed in all (MAX_STREAM: a gzip bomb stops there). Nothing is ever extracted.

Formats: POSIX.1-1988 ustar headers (512-byte blocks: name[100] at 0, size[12] at 124,
chksum[8] at 148, typeflag at 156, magic "ustar" at 257, prefix[155] at 345); size in octal
or, with the top bit of its first byte set, GNU base-256; GNU 'L' long names; POSIX.1-2001
pax 'x' extended headers ("%d key=value\\n" records; path and size used), 'g' skipped.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO, cast

BLOCK = 512
MAX_HEADER = 65536  # a long name is at most PATH_MAX (4096); pax headers we write: none
REGULAR = (b"0", b"\0", b"7")


class TarError(ValueError):
    """The archive is damaged or goes past a bound; the message says which."""


class _Counted:
    """Reads from the (decompressed) stream, refusing to go past max_stream bytes."""

    def __init__(self, raw: BinaryIO, max_stream: int) -> None:
        self.raw = raw
        self.max_stream = max_stream
        self.total = 0

    def read(self, n: int) -> bytes:
        if self.total + n > self.max_stream:
            raise TarError(f"more than {self.max_stream >> 20} MiB of archive: not read further")
        try:
            data = self.raw.read(n)
        except (OSError, EOFError, zlib.error) as err:
            raise TarError(f"damaged ({err})") from None
        self.total += len(data)
        if len(data) != n:
            raise TarError("the archive ends inside a member")
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            step = min(n, 1 << 20)
            self.read(step)
            n -= step


def _padded(n: int) -> int:
    return (n + BLOCK - 1) // BLOCK * BLOCK


def _size(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256 (a size of 8 GiB or more)
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    if not text:
        return 0
    if not all(48 <= c <= 55 for c in text):
        raise TarError("a header's size is not octal")
    return int(text, 8)


def _checksum_ok(hdr: bytes) -> bool:
    text = hdr[148:156].split(b"\0", 1)[0].strip()
    if not text or not all(48 <= c <= 55 for c in text):
        return False
    want = int(text, 8)
    total = sum(hdr[:148]) + 8 * 32 + sum(hdr[156:])
    return want == total


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos, pos + 24)
        if sp < 0 or not data[pos:sp].isdigit():
            raise TarError("a damaged pax header")
        length = int(data[pos:sp])
        rec = data[sp + 1 : pos + length]
        if length <= 0 or pos + length > len(data) or not rec.endswith(b"\n"):
            raise TarError("a damaged pax header")
        key, eq, value = rec[:-1].partition(b"=")
        if eq:
            out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return out


def members(
    raw: BinaryIO, *, max_members: int, max_file: int, max_stream: int
) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each regular member of at most max_file bytes, in archive order.
    raw is the archive file; gzip is recognised by its magic."""
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    # A GzipFile reads like any binary file; typeshed does not call it a BinaryIO.
    stream = cast(BinaryIO, gzip.GzipFile(fileobj=raw)) if head == b"\x1f\x8b" else raw
    src = _Counted(stream, max_stream)
    count = 0
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        hdr = _next_header(src, count)
        if hdr is None:
            return
        count += 1
        if count > max_members:
            raise TarError(f"more than {max_members} members: not read further")
        kind = hdr[156:157]
        size = _size(hdr[124:136])
        psize = pax.get("size", "")
        if psize.isascii() and psize.isdigit() and len(psize) < 20:
            size = int(psize)
        if kind in (b"L", b"x", b"g", b"K"):
            if size > MAX_HEADER:
                raise TarError(f"a {size}-byte extended header (the cap is {MAX_HEADER})")
            data = src.read(_padded(size))[:size]
            if kind == b"L":
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif kind == b"x":
                pax = _pax(data)
            continue
        name = long_name or pax.get("path") or _ustar_name(hdr)
        long_name, pax = None, {}
        if kind in REGULAR and size <= max_file:
            yield name, src.read(_padded(size))[:size]
        else:
            src.skip(_padded(size))


def _next_header(src: _Counted, count: int) -> bytes | None:
    """The next member's header block after `count` members, None at the end-of-archive
    marker (two zero blocks; one is enough to stop)."""
    try:
        hdr = src.read(BLOCK)
    except TarError:
        if src.total == 0 or count:
            raise
        raise TarError("not a tar archive") from None
    if hdr == bytes(BLOCK):
        return None
    if not _checksum_ok(hdr):
        raise TarError("not a tar archive" if count == 0 else f"member {count + 1}: bad header")
    return hdr


def _ustar_name(hdr: bytes) -> str:
    name = hdr[0:100].split(b"\0", 1)[0]
    if hdr[257:262] == b"ustar":
        prefix = hdr[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "replace")
