"""Capture files for split tests: classic pcap and pcapng written with netsleuth's writers,
where each pcap record starts (a file is cut there to split it between records), and the
scan JSON of one process against that of a split run."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from netsleuth.capture.split import HEADER, RECORD
from netsleuth.capture.writer import PcapngWriter, write_pcap
from netsleuth.report.jsonout import dumps, scan_document
from netsleuth.scale import scan_parallel
from netsleuth.scan import scan


def write(path: Path, frames: list[tuple[int, bytes]]) -> Path:
    with open(path, "wb") as fh:
        write_pcap(fh, frames)
    return path


def write_pcapng(path: Path, frames: Iterable[tuple[int, bytes]]) -> Path:
    with open(path, "wb") as fh:
        w = PcapngWriter(fh)
        for ts, frame in frames:
            w.packet(ts, frame)
    return path


def record_starts(path: Path) -> list[int]:
    """Where each record header starts (a little-endian file, as write_pcap writes)."""
    data, out, pos = path.read_bytes(), [], HEADER
    while pos + RECORD <= len(data):
        out.append(pos)
        pos += RECORD + struct.unpack("<I", data[pos + 8 : pos + 12])[0]
    return out


def one(path: Path) -> str:
    """scan's JSON of the file, read by one process in one piece."""
    return dumps(scan_document(scan([str(path)])))


def split(path: Path, targets: list[int], *, processes: bool = False) -> str:
    """scan's JSON of the file cut at the byte offsets nearest `targets` (scale.plan)."""
    result = scan_parallel(
        [str(path)],
        tunnel_depth=3,
        progress=None,
        workers=2,
        split_at={str(path): targets},
        processes=processes,
    )
    return dumps(scan_document(result))
