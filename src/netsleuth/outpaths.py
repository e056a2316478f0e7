"""Output paths that never clobber an input and never leave a partial file.

`scan --export FILE FILE` truncated its own input to 48 bytes, even when nothing was
exported. Outputs are compared with every input by (st_dev, st_ino), so also through a
symlink or a hard link, before anything is opened for writing; and written to a temporary
file in the same directory, renamed over the target only when complete.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from netsleuth.errors import InputError


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def refuse_output_over_input(output: str, inputs: Sequence[str], option: str) -> None:
    """An output that is one of the inputs (the same inode: also through a symlink or a hard
    link) is refused before anything is opened for writing: `scan --export FILE FILE`
    truncated its own input."""
    out = _identity(output)
    if out is None:
        return
    for inp in inputs:
        if inp != "-" and _identity(inp) == out:
            raise InputError(
                output, f"{option} would overwrite the input {inp}: choose another path"
            )


def _written_file(path: str) -> tuple[int, int] | str | None:
    """What writing `path` replaces: a regular file's inode, or for a path that does not
    exist yet its resolved name; None for a device or FIFO, written in place."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def refuse_one_file_twice(outputs: Sequence[tuple[str, str]]) -> None:
    """Two outputs, (option, path) each, that name one file are refused before anything is
    written: `scan --export F --html F` wrote the export, then the report over it."""
    seen: dict[tuple[int, int] | str, str] = {}
    for option, path in outputs:
        key = _written_file(path)
        if key is None:
            continue
        if key in seen:
            raise InputError(
                path, f"{seen[key]} and {option} name the same file: give each its own path"
            )
        seen[key] = option


def require_regular_inputs(inputs: Sequence[str], why: str) -> None:
    """For a second pass over the inputs: a pipe, FIFO or device cannot be read twice."""
    for inp in inputs:
        if inp == "-":
            raise InputError("-", why)
        try:
            st = os.stat(inp)
        except OSError:
            continue  # the first pass reports it
        if not stat.S_ISREG(st.st_mode):
            raise InputError(inp, why)


def _temp_beside(path: str) -> tuple[int, str]:
    """A new temporary file in the folder `path` is written in: (descriptor, name)."""
    folder = os.path.dirname(path) or "."
    try:
        return tempfile.mkstemp(dir=folder, prefix=".netsleuth-", suffix=".part")
    except OSError as err:
        raise InputError(path, f"cannot write in {folder}: {err.strerror}") from None


def require_writable_folder(path: str) -> None:
    """For an output written only later (scan --live's evidence, at its first trigger): its
    folder is tried now, with the temporary file atomic_output would make made and removed
    there, so a wrong path is one line at the start rather than the evidence lost when it
    comes (helper-52)."""
    fd, tmp = _temp_beside(path)
    os.close(fd)
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(path: str, *, special_in_place: bool = True) -> Iterator[BinaryIO]:
    """A temporary file in the target's directory, renamed over the target only when the
    body completes: a failed or interrupted export leaves no partial file and no old file
    clobbered. A target the user named that is not a regular file (/dev/stdout, a FIFO) is
    written in place, unless special_in_place is False (fixed names in a folder: whatever
    sits there, a planted symlink included, is replaced, never written through)."""
    try:
        st = os.stat(path)
        special = special_in_place and not stat.S_ISREG(st.st_mode)
    except FileNotFoundError:
        special = False
    except OSError as err:
        raise InputError(path, f"cannot write: {err.strerror}") from None
    if special:
        try:
            fh = open(path, "wb")  # noqa: SIM115 - closed below
        except OSError as err:
            raise InputError(path, f"cannot write: {err.strerror}") from None
        with fh:
            yield fh
        return
    fd, tmp = _temp_beside(path)
    try:
        # A courtesy, not a condition: where chmod is refused (FUSE and network filesystems
        # without it: ENOTSUP, EPERM) the file keeps mkstemp's 0600 and is still written.
        with contextlib.suppress(OSError):
            os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _mode_for(path: str) -> int:
    """The permissions the finished file gets: those of the regular file it replaces (of
    another user's, no more than a new file gets), else what open(2) would give a new file
    (0666 less the umask), as tshark -w, tcpdump -w and cp do. mkstemp makes its file 0600
    whatever the umask, so every report, export and bundle came out readable by its owner
    alone, and one rewritten in place (a report a web server publishes) lost the modes it
    had."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0o666 & ~_umask()
    if not stat.S_ISREG(st.st_mode):
        return 0o666 & ~_umask()
    # The permission bits only: a set-user-ID bit on the old file is not given to a file
    # this process (root, often) now owns.
    old = st.st_mode & 0o777
    if st.st_uid == os.geteuid():
        return old
    # Another user's file (one planted where a fixed name is written, special_in_place
    # False, or in a shared folder) lends no more than a new file gets: its 0666 made this
    # process's file world-writable. Nor is a private one opened wider.
    return old & 0o666 & ~_umask()


def _umask() -> int:
    """This process's umask: from /proc/self/status (Linux 4.7, "Umask:"), which reads it
    without changing it; else set and put back at once (os.umask is the only call that
    returns it, and another thread creating a file in between would get the wrong mask)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
