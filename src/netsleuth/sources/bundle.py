"""Bundles: a host's receive-path readings, taken on the broken host and diagnosed elsewhere.

Format 1 (documented in README.md, "Bundle format"): a directory, or a .tar.gz of one, with
  meta.json  {"format": 1, "samples": [{"dir": "samples/0", "time": <unix seconds>}, ...],
              "host": "<hostname>", "created_by": "netsleuth <version>"}
  samples/N/<path>  each file of sources.hostfs at its real path (samples/0/proc/net/
              softnet_stat, samples/0/sys/class/net/eth0/statistics/rx_dropped, ...) and
              samples/N/ethtool/<dev>/statistics in `ethtool -S` text.

Reading never extracts: members are read into memory, only regular files under the sample
directories named in meta.json, each capped, so a hostile archive cannot write anywhere or
exhaust memory. What stays in memory is counted as held (a decoded text: 1, 2 or 4 bytes a
character), not as the bytes read, and doctor keeps the files of its two samples only (the
first and the last), so memory does not grow with the number of samples either."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from netsleuth.errors import InputError
from netsleuth.outpaths import atomic_output
from netsleuth.sources.hostfs import MAX_FILE, Snapshot
from netsleuth.sources.safefile import NotRegularError, read_capped
from netsleuth.sources.tarread import BLOCK, TarError, members

FORMAT = 1
# The bounds of a bundle, each above what `collect` writes on a big host (a 512-CPU host's
# /proc/interrupts is ~2 MB; one sample of a host with 200 devices is ~3,000 files) and far
# below what would hurt: memory stays under a few hundred MB, time under seconds.
# MAX_TOTAL counts the texts held, as CPython holds them (4 bytes a character in a text with
# one emoji), with their names: doctor holds two samples' files and every sample's notes. A
# sample of `collect` measures 11 KB on a 2-CPU VM, 90 KB on the 128-CPU fixture (tests/
# fixtures/host128), ~2.5 MB on a 512-CPU host and under 5 MB on 1024 CPUs (its interrupts
# near MAX_FILE); notes.txt: none in the bundles collected here (a few short lines where a
# file is absent, under 1 KB a sample held). 32 MiB is 3x two 1024-CPU samples, and at
# most 32 MiB whatever the characters (it was 256 MiB of bytes read, held as texts of up to
# 1 GiB, plus the bytes: 1.3 GB peak).
MAX_TOTAL = 32 << 20
MAX_STREAM = 512 << 20  # archive bytes decompressed (a gzip bomb stops here)
MAX_MEMBERS = 200_000  # files
MAX_SAMPLES = 10000
MAX_META = 1 << 20
MAX_NOTES = 1000
MAX_TIME = 1 << 40  # sample times: unix seconds, year ~36,800 at most


def write_bundle(
    path: Path,
    samples: Iterable[tuple[float, Snapshot]],
    meta: dict[str, Any],
    planned: int | None = None,
) -> int:
    """A .tar.gz when the name ends in .tar.gz or .tgz, else a directory; the number of
    samples. Each sample is written as it comes and let go (`collect` passes them as it
    takes them: a sample of a 512-CPU host is ~2.5 MB, and an hour at 1 s held whole was
    ~9 GB); meta.json, which lists them, comes last. Never more than doctor --bundle reads
    (_Room): `planned` samples that would not fit are refused at the first (InputError,
    nothing written); a host that grows past the room midway gets the samples that fit."""
    if path.name.endswith((".tar.gz", ".tgz")):
        # Renamed into place when complete: a full disk leaves no partial bundle.
        with atomic_output(str(path)) as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
            now = int(time.time())

            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), now
                tar.addfile(info, io.BytesIO(data))

            return _write_samples(samples, meta, add, planned)
    # Built in a private folder beside the target and moved in when complete: a run that
    # stops midway (a signal, a full disk) leaves nothing behind.
    parent = path.parent
    try:
        work = Path(tempfile.mkdtemp(dir=parent, prefix=".netsleuth-", suffix=".part"))
    except OSError as err:
        raise InputError(str(path), f"cannot write in {parent}: {err.strerror}") from None
    try:
        n = _write_samples(samples, meta, lambda name, data: _write_in(work, name, data), planned)
        _move_into(work, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return n


class _Room:
    """What a bundle may hold so that the reader takes it whole: MAX_MEMBERS members and
    MAX_STREAM bytes of tar stream, with room kept for meta.json. A 128-CPU host's sample
    is ~90 KB, so an hour at 1 s passes MAX_STREAM; a host with 200 devices, ~3,000 files a
    sample, MAX_MEMBERS after 67 samples: doctor --bundle then refused what collect wrote.

    Counted as the readers count, at most: the tar reader counts every header, and Python's
    tarfile (PAX format) writes a second one before a name that is not ASCII (a device may
    be named so) or longer than 100 bytes; the folder reader counts every entry under a
    sample, its directories too (helper-53). Bytes: a header, one more header and block for
    such a name, the data in 512-byte blocks."""

    def __init__(self) -> None:
        self.members = 0
        self.nbytes = 2 * BLOCK  # the archive's end

    @staticmethod
    def cost(files: list[tuple[str, bytes]]) -> tuple[int, int]:
        names = [name for name, _ in files]
        pax = sum(not n.isascii() or len(n.encode()) > 100 for n in names)
        dirs = {n[: i + 1] for n in names for i, c in enumerate(n) if c == "/"}
        members = len(files) + pax + len(dirs)  # a sample's own folders: 2 of them, spare
        return members, sum(3 * BLOCK + -(-len(d) // BLOCK) * BLOCK for _, d in files)

    def fits(self, cost: tuple[int, int], more: int, listed: int = 0) -> bool:
        """Whether `more` samples of this cost fit after `listed`, with meta.json listing
        them all (under 100 bytes a sample as json.dumps indents it)."""
        members, nbytes = cost
        meta = 3 * BLOCK + 100 * (listed + more)
        return (
            self.members + members * more + 1 <= MAX_MEMBERS
            and self.nbytes + nbytes * more + meta <= MAX_STREAM
        )

    def take(self, cost: tuple[int, int]) -> None:
        self.members += cost[0]
        self.nbytes += cost[1]


def _write_samples(
    samples: Iterable[tuple[float, Snapshot]],
    meta: dict[str, Any],
    put: Callable[[str, bytes], None],
    planned: int | None = None,
) -> int:
    """Each sample's files as it comes, then meta.json listing them; how many samples.
    The first sample's size says whether `planned` of them fit (_Room): if not, the run is
    refused then, not after an hour of sampling; a later one that does not fit ends it."""
    listed: list[dict[str, Any]] = []
    room = _Room()
    for t, snap in samples:
        files = list(_sample_files(len(listed), snap))
        cost = room.cost(files)
        if not listed and planned is not None and not room.fits(cost, planned):
            raise InputError(
                "--duration",
                f"a sample of this host is {cost[0]} entries, {cost[1] >> 10} KiB: {planned} "
                f"of them pass what doctor --bundle reads ({MAX_MEMBERS} entries, "
                f"{MAX_STREAM >> 20} MiB); at most {_most(room, cost)} fit (use a longer "
                "--interval, or `netsleuth record` for long series)",
            )
        if not room.fits(cost, 1, len(listed)):
            break  # the host grew past the room: the samples so far are the bundle
        room.take(cost)
        for name, data in files:
            put(name, data)
        listed.append({"dir": f"samples/{len(listed)}", "time": t})
    put("meta.json", json.dumps({"format": FORMAT, "samples": listed, **meta}, indent=2).encode())
    return len(listed)


def _most(room: _Room, cost: tuple[int, int]) -> int:
    """How many samples of `cost` fit in an empty room (at least 0)."""
    lo, hi = 0, MAX_SAMPLES
    while lo < hi:  # the largest count that fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if room.fits(cost, mid) else (lo, mid - 1)
    return lo


def _move_into(work: Path, path: Path) -> None:
    """The bundle built in `work` to `path`: renamed when nothing is there, else each file
    replaced in the folder there (meta.json last, as it was written)."""
    try:
        os.rename(work, path)
        return
    except OSError:
        pass  # a folder already there: file by file
    names = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    for name in sorted(names, key=lambda n: n == "meta.json"):
        _write_in(path, name, (work / name).read_bytes())


def _sample_files(i: int, snap: Snapshot) -> Iterator[tuple[str, bytes]]:
    for rel, text in sorted(snap.files.items()):
        yield f"samples/{i}/{rel}", text.encode()
    if snap.notes:
        yield f"samples/{i}/notes.txt", "\n".join(snap.notes).encode() + b"\n"


def _write_in(folder: Path, name: str, data: bytes) -> None:
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(str(target), special_in_place=False) as fh:
        fh.write(data)


def _safe(name: str) -> PurePosixPath | None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        return None
    return p


def _meta(raw: bytes, source: str) -> list[tuple[str, float]]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError(source, "meta.json is not JSON (or nested too deeply)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(source, f"meta.json: format is not {FORMAT}")
    samples = doc.get("samples")
    if not isinstance(samples, list) or not samples:
        raise InputError(source, "meta.json: no samples listed")
    if len(samples) > MAX_SAMPLES:
        raise InputError(source, f"meta.json: more than {MAX_SAMPLES} samples")
    out = []
    for s in samples:
        if not isinstance(s, dict) or not isinstance(s.get("dir"), str):
            raise InputError(source, "meta.json: a sample without a dir")
        t = s.get("time")
        name = s["dir"][:80]
        if not isinstance(t, int | float) or isinstance(t, bool):
            raise InputError(source, f"meta.json: sample {name!r} has no time")
        if not (isinstance(t, int) and 0 <= t < MAX_TIME) and not (
            isinstance(t, float) and math.isfinite(t) and 0 <= t < MAX_TIME
        ):
            raise InputError(source, f"meta.json: sample {name!r} has an impossible time")
        d = _safe(s["dir"])
        if d is None:
            raise InputError(source, f"meta.json: unsafe sample dir {name!r}")
        out.append((str(d), float(t)))
    return out


def _held(text: str) -> int:
    """What CPython holds for a str: 1, 2 or 4 bytes a character after its widest one (one
    emoji makes a 4 MiB text 16 MiB; an undecodable byte becomes U+FFFD, 2 bytes)."""
    return sys.getsizeof(text)


class _Budget:
    """The bounds of one bundle: the members listed, and the texts held in memory."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.files = 0
        self.held = 0

    def count(self) -> None:
        self.files += 1
        if self.files > MAX_MEMBERS:
            raise InputError(self.source, f"bundle holds more than {MAX_MEMBERS} files")

    def keep(self, snap: Snapshot, rel: str, data: bytes) -> None:
        """rel's text into snap, counted as held (its name too) before the next is read."""
        text = data.decode("utf-8", "replace")
        self.add(_held(text) + _held(rel))
        snap.files[rel] = text

    def add(self, held: int) -> None:
        self.held += held
        if self.held > MAX_TOTAL:
            raise InputError(
                self.source,
                f"bundle samples hold more than {MAX_TOTAL >> 20} MiB of text (MAX_TOTAL)",
            )

    def notes(self, snap: Snapshot) -> None:
        """notes.txt out of snap's files into its notes, the lines counted as held too:
        9000 samples of 1000 two-character notes (3 KB of text each) held 660 MB as lines."""
        text = snap.files.pop("notes.txt", None)
        if text:
            lines = [ln for ln in text.splitlines() if ln][:MAX_NOTES]
            self.add(sum(_held(ln) + 8 for ln in lines))  # 8: its place in the list
            snap.notes += lines


def _kept(dirs: list[tuple[str, float]], ends_only: bool) -> set[str]:
    """The sample directories whose files are read: all, or the earliest and the latest
    sample's (in the order doctor.diagnose sorts them: by time, stable)."""
    if not ends_only:
        return {d for d, _ in dirs}
    ordered = sorted(dirs, key=lambda x: x[1])
    return {ordered[0][0], ordered[-1][0]}


def read_bundle(path: Path, *, ends_only: bool = False) -> list[tuple[float, Snapshot]]:
    """Every sample of the bundle at path, in meta.json's order. With ends_only, only the
    earliest and the latest sample hold their files (the others: their notes only), so
    memory does not grow with the number of samples: that is all doctor's rules read
    (host.doctor_rules.judge compares the first sample with the last)."""
    source = str(path)
    try:
        st = os.stat(path)
    except OSError as err:
        raise InputError(source, err.strerror or str(err)) from None
    if stat.S_ISDIR(st.st_mode):
        return _read_dir(path, source, ends_only)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(source, "not a bundle: neither a directory nor a regular file")
    return _read_tar(path, source, ends_only)


def _read_dir(path: Path, source: str, ends_only: bool) -> list[tuple[float, Snapshot]]:
    root = os.path.realpath(path)
    try:
        raw = read_capped(os.path.join(root, "meta.json"), MAX_META, strict=True)
    except FileNotFoundError:
        raise InputError(source, "no meta.json: not a netsleuth bundle") from None
    except OSError as err:
        raise InputError(source, f"meta.json: {err.strerror or err}") from None
    budget = _Budget(source)
    dirs = _meta(raw, source)
    kept = _kept(dirs, ends_only)
    out = []
    for d, t in dirs:
        base = os.path.join(root, d)
        # The sample directory itself must be a real directory inside the bundle: a symlink
        # there led out of it (579 files under /etc opened as root).
        if os.path.realpath(base) != base or not os.path.isdir(base):
            raise InputError(source, f"sample directory {d} is missing or a symbolic link")
        snap = Snapshot()
        for full in _files(base, budget):  # each entry counted as listed
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            if d not in kept and rel != "notes.txt":
                continue  # a sample doctor does not read: listed and counted, not opened
            try:
                data = read_capped(full, MAX_FILE)
            except NotRegularError:
                continue  # symlinks, FIFOs, devices: a bundle holds regular files only
            except OSError as err:
                raise InputError(
                    source, f"{os.path.relpath(full, root)}: {err.strerror or err}"
                ) from None
            budget.keep(snap, rel, data)
        budget.notes(snap)
        out.append((t, snap))
    return out


def _files(base: str, budget: _Budget) -> Iterator[str]:
    """Every file under base, sorted per directory, symlinked directories not followed;
    each entry counts against the bundle's member bound as it is listed, so a directory
    of millions of entries stops at the bound instead of being listed whole."""
    stack = [base]
    while stack:
        folder = stack.pop()
        dirs: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    budget.count()
                    (dirs if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
        except OSError as err:
            raise InputError(budget.source, f"{folder}: {err.strerror or err}") from None
        yield from (os.path.join(folder, name) for name in sorted(files))
        stack += [os.path.join(folder, d) for d in sorted(dirs, reverse=True)]


def _tar_members(fh: BinaryIO, source: str) -> Iterator[tuple[str, bytes]]:
    """The archive's members under safe relative names, in archive order, within the
    archive's bounds (members, file size, bytes decompressed), read from its start; each
    is the caller's to keep or drop before the next is read."""
    try:
        fh.seek(0)
        for name, data in members(
            fh, max_members=MAX_MEMBERS, max_file=MAX_FILE, max_stream=MAX_STREAM
        ):
            p = _safe(name)
            if p is not None:
                yield p.as_posix().removeprefix("./"), data
    except TarError as err:
        raise InputError(source, f"not a bundle directory or readable archive: {err}") from None
    except OSError as err:
        raise InputError(source, err.strerror or str(err)) from None


def _tar_meta(fh: BinaryIO, source: str) -> tuple[str, bytes]:
    """The first pass over an archive: its meta.json and the folder it is in ("" or
    "name/": a tar of the directory itself may put everything under one top folder).
    Nothing else is kept, so the second pass knows which samples to keep wherever
    meta.json lies in the archive."""
    root: bytes | None = None
    tops: dict[str, bytes] = {}
    for name, data in _tar_members(fh, source):
        if name == "meta.json":
            root = data
        elif (
            name.endswith("/meta.json") and name.count("/") == 1 and (len(tops) < 2 or name in tops)
        ):
            tops[name] = data  # two names already make it ambiguous: no more are kept
    if root is not None:
        prefix, raw = "", root
    elif len(tops) == 1:
        ((top, raw),) = tops.items()
        prefix = top.removesuffix("meta.json")
    else:
        raise InputError(source, "no meta.json: not a netsleuth bundle")
    if len(raw) > MAX_META:
        raise InputError(source, f"meta.json is larger than {MAX_META >> 10} KiB")
    return prefix, raw


def _read_tar(path: Path, source: str, ends_only: bool) -> list[tuple[float, Snapshot]]:
    """Two passes over one open file (meta.json, then the samples it lists): a bundle
    replaced between them by a new `collect` cannot mix two bundles (helper-49)."""
    try:
        # Non-blocking: a FIFO put in its place since the caller's stat does not hang the
        # open (fstat below refuses it); no effect on a regular file's reads.
        fh = os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb", buffering=65536)
    except OSError as err:
        raise InputError(source, err.strerror or str(err)) from None
    with fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise InputError(source, "not a bundle: neither a directory nor a regular file")
        return _read_open_tar(fh, source, ends_only)


def _read_open_tar(fh: BinaryIO, source: str, ends_only: bool) -> list[tuple[float, Snapshot]]:
    prefix, raw = _tar_meta(fh, source)
    dirs = _meta(raw, source)
    by_dir = {f"{prefix}{d}/": Snapshot() for d, _ in dirs}
    kept = {f"{prefix}{d}/" for d in _kept(dirs, ends_only)}
    filled: set[str] = set()
    budget = _Budget(source)
    for name, data in _tar_members(fh, source):
        # The sample directory a member is under: one dict look-up per directory level.
        for cut in _dir_prefixes(name, prefix):
            snap = by_dir.get(cut)
            if snap is not None:
                filled.add(cut)
                rel = name[len(cut) :]
                if cut in kept or rel == "notes.txt":
                    budget.keep(snap, rel, data)
                break
    out = []
    for d, t in dirs:
        snap = by_dir[f"{prefix}{d}/"]
        if f"{prefix}{d}/" not in filled:
            raise InputError(source, f"sample directory {d} is empty or missing")
        budget.notes(snap)
        out.append((t, snap))
    return out


def _dir_prefixes(name: str, prefix: str) -> Iterator[str]:
    """Every directory prefix of name ("a/", "a/b/", ...) from the shortest."""
    pos = len(prefix)
    while True:
        pos = name.find("/", pos) + 1
        if pos <= 0:
            return
        yield name[:pos]
