"""The one way host, --root and bundle files are read: bounded, never blocking, never
following a last-component symlink, regular files only.

A bundle or a copied root is input an attacker may have written: `meta.json -> /dev/zero`
grew until killed, a FIFO or a symlink into tracefs (trace_pipe) blocked forever, a sparse
3 GB member was read whole before the size cap. Here the file is opened with O_NOFOLLOW and
O_NONBLOCK, checked with fstat to be a regular file (so not a FIFO, device or socket), and
read in 64 KiB pieces up to the cap: memory and time are bounded by the cap, whatever the
file claims. /proc and /sys files are regular files, so the live host reads the same way.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

CHUNK = 65536  # /proc/sys handlers allocate the whole requested count: 4 MiB reads fail


class NotRegularError(OSError):
    """The path is a FIFO, device, socket, directory or (last component) symlink."""


class TooBigError(OSError):
    """The file holds more than the caller's cap."""


def open_regular(path: str) -> BinaryIO:
    """A regular file opened as read_capped opens it, for reading line by line."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotRegularError(err.errno, "a symbolic link, not read", path) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularError(0, f"not a regular file ({_kind(mode)}), not read", path)
    return os.fdopen(fd, "rb")


def read_capped(path: str, cap: int, *, dir_fd: int | None = None, strict: bool = False) -> bytes:
    """Up to `cap` bytes of the regular file at `path`. With strict, a file longer than
    the cap raises TooBigError instead of being cut at the cap."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise NotRegularError(err.errno, "a symbolic link, not read", path) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularError(0, f"not a regular file ({_kind(mode)}), not read", path)
        chunks = []
        size = 0
        limit = cap + 1 if strict else cap
        while size < limit:
            chunk = os.read(fd, min(CHUNK, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if strict and size > cap:
        raise TooBigError(0, f"larger than {cap} bytes, not read", path)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "a special file"
