"""Capture files for split tests: classic pcap and pcapng written with netsleuth's writers,
and where each pcap record starts (a file is cut there to split it between records)."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from netsleuth.capture.split import HEADER, RECORD
from netsleuth.capture.writer import PcapngWriter, write_pcap


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
