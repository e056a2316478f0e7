"""Bundles: a host's receive-path readings, taken on the broken host and diagnosed elsewhere.

Format 1 (documented in README.md, "Bundle format"): a directory, or a .tar.gz of one, with
  meta.json  {"format": 1, "samples": [{"dir": "samples/0", "time": <unix seconds>}, ...],
              "host": "<hostname>", "created_by": "netsleuth <version>"}
  samples/N/<path>  each file of sources.hostfs at its real path (samples/0/proc/net/
              softnet_stat, samples/0/sys/class/net/eth0/statistics/rx_dropped, ...) and
              samples/N/ethtool/<dev>/statistics in `ethtool -S` text.

Reading never extracts: members are read into memory, only regular files under the sample
directories named in meta.json, each capped, so a hostile archive cannot write anywhere or
exhaust memory."""

from __future__ import annotations

import io
import json
import math
import os
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from netsleuth.errors import InputError
from netsleuth.outpaths import atomic_output
from netsleuth.sources.hostfs import MAX_FILE, Snapshot
from netsleuth.sources.safefile import NotRegularError, read_capped
from netsleuth.sources.tarread import TarError, members

FORMAT = 1
# The bounds of a bundle, each above what `collect` writes on a big host (a 512-CPU host's
# /proc/interrupts is ~2 MB; one sample of a host with 200 devices is ~3,000 files) and far
# below what would hurt: memory stays under a few hundred MB, time under seconds.
MAX_TOTAL = 256 << 20  # file bytes kept, all samples
MAX_STREAM = 512 << 20  # archive bytes decompressed (a gzip bomb stops here)
MAX_MEMBERS = 200_000  # files
MAX_SAMPLES = 10000
MAX_META = 1 << 20
MAX_NOTES = 1000
MAX_TIME = 1 << 40  # sample times: unix seconds, year ~36,800 at most


def write_bundle(path: Path, samples: list[tuple[float, Snapshot]], meta: dict[str, Any]) -> None:
    """A .tar.gz when the name ends in .tar.gz or .tgz, else a directory."""
    doc = {
        "format": FORMAT,
        "samples": [{"dir": f"samples/{i}", "time": t} for i, (t, _) in enumerate(samples)],
        **meta,
    }
    files: dict[str, bytes] = {"meta.json": json.dumps(doc, indent=2).encode()}
    for i, (_, snap) in enumerate(samples):
        for rel, text in snap.files.items():
            files[f"samples/{i}/{rel}"] = text.encode()
        if snap.notes:
            files[f"samples/{i}/notes.txt"] = "\n".join(snap.notes).encode() + b"\n"
    if path.name.endswith((".tar.gz", ".tgz")):
        # Renamed into place when complete: a full disk leaves no partial bundle.
        with atomic_output(str(path)) as fh, tarfile.open(fileobj=fh, mode="w:gz") as tar:
            now = time.time()
            for name, data in sorted(files.items()):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = int(now)
                tar.addfile(info, io.BytesIO(data))
    else:
        for name, data in files.items():
            target = path / name
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


def _notes(snap: Snapshot) -> None:
    text = snap.files.pop("notes.txt", None)
    if text:
        snap.notes += [ln for ln in text.splitlines() if ln][:MAX_NOTES]


class _Budget:
    """The bounds of one bundle: members and bytes in all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.files = 0
        self.bytes = 0

    def take(self, size: int, *, count: bool = True) -> None:
        self.files += count
        self.bytes += size
        if self.files > MAX_MEMBERS:
            raise InputError(self.source, f"bundle holds more than {MAX_MEMBERS} files")
        if self.bytes > MAX_TOTAL:
            raise InputError(self.source, f"bundle holds more than {MAX_TOTAL >> 20} MiB")


def read_bundle(path: Path) -> list[tuple[float, Snapshot]]:
    source = str(path)
    try:
        st = os.stat(path)
    except OSError as err:
        raise InputError(source, err.strerror or str(err)) from None
    if stat.S_ISDIR(st.st_mode):
        return _read_dir(path, source)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(source, "not a bundle: neither a directory nor a regular file")
    return _read_tar(path, source)


def _read_dir(path: Path, source: str) -> list[tuple[float, Snapshot]]:
    root = os.path.realpath(path)
    try:
        raw = read_capped(os.path.join(root, "meta.json"), MAX_META, strict=True)
    except FileNotFoundError:
        raise InputError(source, "no meta.json: not a netsleuth bundle") from None
    except OSError as err:
        raise InputError(source, f"meta.json: {err.strerror or err}") from None
    budget = _Budget(source)
    out = []
    for d, t in _meta(raw, source):
        base = os.path.join(root, d)
        # The sample directory itself must be a real directory inside the bundle: a symlink
        # there led out of it (579 files under /etc opened as root).
        if os.path.realpath(base) != base or not os.path.isdir(base):
            raise InputError(source, f"sample directory {d} is missing or a symbolic link")
        snap = Snapshot()
        for full in _files(base, budget):  # each entry counted as listed
            try:
                data = read_capped(full, MAX_FILE)
            except NotRegularError:
                continue  # symlinks, FIFOs, devices: a bundle holds regular files only
            except OSError as err:
                raise InputError(
                    source, f"{os.path.relpath(full, root)}: {err.strerror or err}"
                ) from None
            budget.take(len(data), count=False)
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            snap.files[rel] = data.decode("utf-8", "replace")
        _notes(snap)
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
                    budget.take(0)
                    (dirs if entry.is_dir(follow_symlinks=False) else files).append(entry.name)
        except OSError as err:
            raise InputError(budget.source, f"{folder}: {err.strerror or err}") from None
        yield from (os.path.join(folder, name) for name in sorted(files))
        stack += [os.path.join(folder, d) for d in sorted(dirs, reverse=True)]


def _tar_members(path: Path, source: str) -> dict[str, bytes]:
    """The archive's members under safe relative names, within the bundle's bounds."""
    blobs: dict[str, bytes] = {}
    budget = _Budget(source)
    try:
        with open(path, "rb", buffering=65536) as fh:
            for name, data in members(
                fh, max_members=MAX_MEMBERS, max_file=MAX_FILE, max_stream=MAX_STREAM
            ):
                p = _safe(name)
                if p is None:
                    continue
                budget.take(len(data))
                blobs[p.as_posix().removeprefix("./")] = data
    except TarError as err:
        raise InputError(source, f"not a bundle directory or readable archive: {err}") from None
    except OSError as err:
        raise InputError(source, err.strerror or str(err)) from None
    return blobs


def _read_tar(path: Path, source: str) -> list[tuple[float, Snapshot]]:
    blobs = _tar_members(path, source)
    # A tar of the directory itself may put everything under one top folder.
    prefix = ""
    if "meta.json" not in blobs:
        tops = [n for n in blobs if n.endswith("/meta.json") and n.count("/") == 1]
        if len(tops) != 1:
            raise InputError(source, "no meta.json: not a netsleuth bundle")
        prefix = tops[0].removesuffix("meta.json")
    if len(blobs[prefix + "meta.json"]) > MAX_META:
        raise InputError(source, f"meta.json is larger than {MAX_META >> 10} KiB")
    dirs = _meta(blobs[prefix + "meta.json"], source)
    by_dir: dict[str, Snapshot] = {}
    for d, _ in dirs:
        by_dir[f"{prefix}{d}/"] = Snapshot()
    for name, data in blobs.items():
        # The sample directory a member is under: one dict look-up per directory level.
        for cut in _dir_prefixes(name, prefix):
            snap = by_dir.get(cut)
            if snap is not None:
                snap.files[name[len(cut) :]] = data.decode("utf-8", "replace")
                break
    out = []
    for d, t in dirs:
        snap = by_dir[f"{prefix}{d}/"]
        if not snap.files:
            raise InputError(source, f"sample directory {d} is empty or missing")
        _notes(snap)
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
