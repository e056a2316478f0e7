"""Capture files for split tests: classic pcap and pcapng written with netsleuth's writers,
where each pcap record starts (a file is cut there to split it between records), and the
scan JSON of one process against that of a split run."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import pytest

from netsleuth import craft
from netsleuth.capture.split import HEADER, RECORD
from netsleuth.capture.writer import PcapngWriter, write_pcap
from netsleuth.decode.table import PacketTable
from netsleuth.report.jsonout import dumps, scan_document
from netsleuth.scale import Assembler, RangeJob, Sequencer, scan_parallel
from netsleuth.scan import scan

OS, OD, IS, ID_ = "203.0.113.1", "203.0.113.2", "10.1.0.1", "10.1.0.2"


def open_trains(*, ipip: bool = True) -> list[bytes]:
    """A flow, an inner fragment train, outer-fragmented tunnels (GRE, VXLAN and, unless
    told not to, IP-in-IP) and incident 1's poison fragment split over outer fragments,
    interleaved so that a cut between any two of them cuts something open (IPv4 packets,
    without a link header)."""
    seg = craft.tcp(IS, ID_, 40000, 443, bytes(1380), flags="A")
    inner = craft.ether(craft.ipv4(IS, ID_, seg, 6, ident=99), 0x0800)
    gre = craft.fragment_ipv4(OS, OD, craft.gre(inner, 0x6558), 47, sizes=[1000, 0], ident=1)
    vx = craft.udp(OS, OD, 50000, 4789, craft.vxlan(inner, vni=10))
    vxlan = craft.fragment_ipv4(OS, OD, vx, 17, sizes=[800, 0], ident=2)
    four = craft.fragment_ipv4(OS, OD, craft.ipv4(IS, ID_, bytes(1400), 17), 4, sizes=[600, 0])
    ip4 = four if ipip else [b"", b""]
    train = craft.fragment_ipv4(IS, ID_, bytes(3000), 17, sizes=[1200, 1200, 0], ident=5)
    first = craft.ipv4(IS, ID_, seg[:1400], 6, ident=7, flags=0x1)
    empty = craft.pad(craft.ether(craft.ipv4(IS, ID_, b"", 6, ident=7, frag_off=1400), 0x0800))
    poison_plain = craft.ipv4(OS, OD, craft.gre(craft.ether(first, 0x0800), 0x6558), 47)
    poison = craft.fragment_ipv4(OS, OD, craft.gre(empty, 0x6558), 47, sizes=[24, 0], ident=8)
    flow = [
        craft.ipv4(IS, ID_, craft.tcp(IS, ID_, 40001, 80, bytes(100), flags=f), 6)
        for f in ("S", "A", "A", "FA")
    ]
    order = [
        flow[0], gre[0], train[0], vxlan[0], flow[1], train[1], gre[1], ip4[0],
        poison_plain, vxlan[1], poison[0], flow[2], train[2], ip4[1], poison[1], flow[3],
    ]  # fmt: skip
    return [p for p in order if p]


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


def watch_heads(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], list[int]]:
    """Lists filled as scans run in this process: the start of every range the parent
    read itself (Assembler.add_head), and the packets of every batch it put through the
    checks at once (Sequencer.observe)."""
    heads: list[int] = []
    at_once: list[int] = []
    add_head, observe = Assembler.add_head, Sequencer.observe

    def head(self: Assembler, job: RangeJob) -> None:
        heads.append(job.start)
        add_head(self, job)

    def seen(self: Sequencer, table: PacketTable) -> None:
        at_once.append(table.n)
        observe(self, table)

    monkeypatch.setattr(Assembler, "add_head", head)
    monkeypatch.setattr(Sequencer, "observe", seen)
    return heads, at_once
