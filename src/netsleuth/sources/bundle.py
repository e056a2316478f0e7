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
import tarfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from netsleuth.errors import InputError
from netsleuth.sources.hostfs import MAX_FILE, Snapshot

FORMAT = 1
MAX_TOTAL = 256 << 20
MAX_SAMPLES = 10000


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
        with tarfile.open(path, "w:gz") as tar:
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
            target.write_bytes(data)


def _safe(name: str) -> PurePosixPath | None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts:
        return None
    return p


def _meta(raw: bytes, source: str) -> list[tuple[str, float]]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InputError(source, "meta.json is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(source, f"meta.json: format is not {FORMAT}")
    samples = doc.get("samples")
    if not isinstance(samples, list) or not samples or len(samples) > MAX_SAMPLES:
        raise InputError(source, "meta.json: no samples listed")
    out = []
    for s in samples:
        if not isinstance(s, dict) or not isinstance(s.get("dir"), str):
            raise InputError(source, "meta.json: a sample without a dir")
        t = s.get("time")
        if not isinstance(t, int | float):
            raise InputError(source, f"meta.json: sample {s['dir']} has no time")
        d = _safe(s["dir"])
        if d is None:
            raise InputError(source, f"meta.json: unsafe sample dir {s['dir']!r}")
        out.append((str(d), float(t)))
    return out


def _notes(snap: Snapshot) -> None:
    text = snap.files.pop("notes.txt", None)
    if text:
        snap.notes += [ln for ln in text.splitlines() if ln]


def read_bundle(path: Path) -> list[tuple[float, Snapshot]]:
    source = str(path)
    if path.is_dir():
        try:
            dirs = _meta((path / "meta.json").read_bytes(), source)
        except FileNotFoundError:
            raise InputError(source, "no meta.json: not a netsleuth bundle") from None
        out = []
        total = 0
        for d, t in dirs:
            base = path / d
            if not base.is_dir():
                raise InputError(source, f"sample directory {d} is missing")
            snap = Snapshot()
            for f in sorted(base.rglob("*")):
                if not f.is_file() or f.is_symlink():
                    continue
                data = f.read_bytes()[:MAX_FILE]
                total += len(data)
                if total > MAX_TOTAL:
                    raise InputError(source, f"bundle holds more than {MAX_TOTAL >> 20} MiB")
                snap.files[f.relative_to(base).as_posix()] = data.decode("utf-8", "replace")
            _notes(snap)
            out.append((t, snap))
        return out
    blobs: dict[str, bytes] = {}
    total = 0
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by the with below)
    except (tarfile.TarError, OSError) as err:
        raise InputError(source, f"not a bundle directory or tar archive ({err})") from None
    with tar:
        try:
            for m in tar:
                if not m.isreg():
                    continue
                p = _safe(m.name)
                if p is None or m.size > MAX_FILE:
                    continue
                total += m.size
                if total > MAX_TOTAL:
                    raise InputError(source, f"bundle holds more than {MAX_TOTAL >> 20} MiB")
                fh = tar.extractfile(m)
                if fh is not None:
                    blobs[p.as_posix().removeprefix("./")] = fh.read()
        except (tarfile.TarError, EOFError, OSError) as err:
            raise InputError(source, f"the archive is damaged ({err})") from None
    # A tar of the directory itself may put everything under one top folder.
    prefix = ""
    if "meta.json" not in blobs:
        tops = [n for n in blobs if n.endswith("/meta.json") and n.count("/") == 1]
        if len(tops) != 1:
            raise InputError(source, "no meta.json: not a netsleuth bundle")
        prefix = tops[0].removesuffix("meta.json")
    dirs = _meta(blobs[prefix + "meta.json"], source)
    out = []
    for d, t in dirs:
        head = f"{prefix}{d}/"
        snap = Snapshot()
        for name, data in blobs.items():
            if name.startswith(head):
                snap.files[name[len(head) :]] = data.decode("utf-8", "replace")
        if not snap.files:
            raise InputError(source, f"sample directory {d} is empty or missing")
        _notes(snap)
        out.append((t, snap))
    return out
