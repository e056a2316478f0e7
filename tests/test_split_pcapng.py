"""Split pcapng scans equal one scan, byte for byte: captures with several sections (one
flipping byte order), interfaces of different link types and clocks described in the
middle of a section, cut where the reader's buffers start (mid fragment train, mid flow,
mid section, at a section's start), merged, and compared with the JSON of one run. The
files are built byte by byte (tests/capfiles.py); tshark counts their frames.

Most tests make the reader's buffer small (both runs use it), so that a capture of a few
KB spans many buffers and a range can start between nearly any two blocks."""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from netsleuth import craft, scale
from netsleuth.capture import open_capture, split_pcapng
from netsleuth.capture.chunks import CHUNK_BYTES, Chunker
from netsleuth.capture.pcapng import Interface, PcapngReader
from netsleuth.capture.source import ByteSource
from netsleuth.capture.split_pcapng import Section, find_start, range_starts
from netsleuth.capture.writer import PcapngWriter
from netsleuth.craft import incidents
from netsleuth.craft.link import sll
from netsleuth.craft.mix import mixed_capture
from netsleuth.report.jsonout import dumps, scan_document
from netsleuth.scale import FileJob, Part, RangeJob, assembly, plan, run_job, worker
from netsleuth.scale.planning import located
from netsleuth.scan import scan
from tests.capfiles import block, epb, fcs_flags, idb, isb, option, shb, spb, with_fcs
from tests.splitutil import ID_, IS, one, open_trains, split, watch_heads, write_pcapng

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "tcpdump"
T0 = 1_700_000_000

Small = Callable[[int], None]


@pytest.fixture
def small_buffers(monkeypatch: pytest.MonkeyPatch) -> Small:
    """Make every pcapng reader of this process (the one-process run's, the planner's walk
    and the ranges') use `size`-byte buffers."""

    real = PcapngReader.__init__

    def use(size: int) -> None:
        def init(
            self: PcapngReader,
            source: ByteSource,
            *,
            compressed: bool = False,
            chunk_bytes: int = CHUNK_BYTES,
        ) -> None:
            real(self, source, compressed=compressed, chunk_bytes=size)

        monkeypatch.setattr(PcapngReader, "__init__", init)

    return use


def starts(path: Path) -> list[int]:
    """Where every reader buffer after the first starts."""
    return [at for at, _ in range_starts(str(path), list(range(1, path.stat().st_size)))]


def blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, total length) of every block, each read in its section's byte order."""
    out, pos, order = [], 0, "<"
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        (length,) = struct.unpack_from(order + "I", data, pos + 4)
        out.append((pos, length))
        pos += length
    return out


def fit(path: Path) -> int:
    """The smallest reader buffer that reads the file: its largest block."""
    return max(length for _, length in blocks(path.read_bytes()))


def tshark_frames(path: Path) -> int:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def idb_opts(order: str, linktype: int, opts: bytes) -> bytes:
    return block(order, 1, b"".join([struct.pack(order + "HHI", linktype, 0, 0), opts]))


def sections_capture(path: Path) -> Path:
    """Three sections: little-endian (Ethernet in microseconds; Linux cooked in
    nanoseconds described after packets; a name resolution block and a local-use block
    that fills a buffer without a packet), big-endian (Ethernet in milliseconds with a clock
    offset, then raw IPv4 in 2**-20 s units), little-endian again (Ethernet snapped at 64
    bytes, an interface statistics block, Simple Packet Blocks). The open trains run
    across all of them. Interface statistics blocks count drops from the capture's start,
    so only each interface's latest counts: 2 then 5 + 1 on the first section's Ethernet,
    1 on its cooked interface, 4 in the second section, 0 then 3 in the third (14 in all,
    on 4 interfaces)."""
    pkts = open_trains(ipip=False)  # the sections below were laid out for these 14
    eth = [craft.ether(p, 0x0800) for p in pkts]
    cooked = [sll(p, 0x0800) for p in pkts]
    le, be = "<", ">"
    s = 1  # seconds since T0, one a packet
    out = [shb(le), idb(le, 1)]
    for k in range(5):
        out.append(epb(le, 0, (T0 + s + k) * 10**6, eth[k]))
    out.append(isb(le, 0, ifdrop=2))
    s += 5
    out.append(idb(le, 113, tsresol=9))  # mid-section: ranges after it need it
    out.append(block(le, 4, struct.pack("<HH", 0, 0)))  # NRB: nrb_record_end only
    out.append(block(le, 0x80000001, bytes(1400)))  # local use (draft section 11.1)
    for k in range(5, 8):
        out.append(epb(le, 1, (T0 + s + k) * 10**9, cooked[k]))
        out.append(epb(le, 0, (T0 + s + k) * 10**6, eth[k]))
    out += [isb(le, 0, ifdrop=5, osdrop=1), isb(le, 1, ifdrop=1)]
    offset = option(be, 14, struct.pack(">q", T0)) + option(be, 9, b"\x03") + option(be, 0, b"")
    out += [shb(be), idb_opts(be, 1, offset)]
    for k in range(8, 11):
        out.append(epb(be, 0, (s + k) * 10**3, eth[k]))
    out.append(idb(be, 101, tsresol=0x80 | 20))  # raw IP, 2**-20 s
    out.append(epb(be, 1, (T0 + s + 11) << 20, pkts[11]))
    out.append(epb(be, 0, (s + 11) * 10**3, eth[11]))
    out.append(isb(be, 0, osdrop=4))
    bare = block(le, 5, struct.pack("<III", 0, (T0 + s) * 10**6 >> 32, 0))  # no options
    out += [shb(le), idb(le, 1, snaplen=64), bare]
    small = craft.ether(craft.ipv4(IS, ID_, craft.udp(IS, ID_, 53, 53, bytes(150)), 17), 0x0800)
    for k in range(12, len(pkts)):
        out.append(epb(le, 0, (T0 + s + k) * 10**6, eth[k]))
        out.append(spb(le, small[:64], wirelen=len(small)))  # snapped (section 4.4)
    out.append(isb(le, 0, ifdrop=3))
    path.write_bytes(b"".join(out))
    return path


def test_the_sections_capture_reads_as_tshark_reads_it(tmp_path: Path) -> None:
    cap = sections_capture(tmp_path / "sections.pcapng")
    n = sum(len(b) for b in open_capture(str(cap)).batches())
    assert n == 20
    if shutil.which("tshark") is not None:
        assert tshark_frames(cap) == n


def test_capture_statistics_count_each_interfaces_latest_block(tmp_path: Path) -> None:
    cap = sections_capture(tmp_path / "sections.pcapng")
    doc = scan_document(scan([str(cap)]))
    [loss] = [f for f in doc["findings"] if f["id"] == "capture.capture_loss"]
    assert (loss["count"], loss["evidence"]["lost"]) == (1, 14)
    assert loss["packets"] == [11]  # the first latest block with drops: after frame 11
    assert "say 14 packet(s) were dropped while it was written (4 interface(s);" in loss["summary"]


def test_capture_statistics_cite_a_frame_not_a_skipped_block(tmp_path: Path) -> None:
    """Packet blocks too short for their fixed fields are skipped, not frames: the last
    frame before a statistics block is counted over the frames only."""
    pkt = craft.ether(craft.ipv4(IS, ID_, craft.udp(IS, ID_, 53, 53, bytes(20)), 17), 0x0800)
    short = block("<", 6, struct.pack("<III", 0, 0, 0))  # an EPB of 24 bytes (< 32)
    blocks = [shb(), idb("<", 1), epb("<", 0, 10**6, pkt), short, short, epb("<", 0, 2, pkt)]
    path = tmp_path / "short.pcapng"
    path.write_bytes(b"".join([*blocks, isb("<", 0, ifdrop=7)]))
    doc = scan_document(scan([str(path)]))
    [loss] = [f for f in doc["findings"] if f["id"] == "capture.capture_loss"]
    assert (doc["inputs"][0]["packets"], loss["packets"], loss["evidence"]["lost"]) == (2, [2], 7)


def test_a_range_knows_the_interfaces_of_its_section(tmp_path: Path, small_buffers: Small) -> None:
    cap = sections_capture(tmp_path / "sections.pcapng")
    small_buffers(fit(cap))
    data = cap.read_bytes()
    found = dict(range_starts(str(cap), list(range(1, len(data)))))
    second_shb = data.index(shb(">")[:8])
    linktypes = {at: [i.linktype for i in s.interfaces] for at, s in found.items()}
    # A start in the first section after the cooked interface was described: both.
    assert any(at < second_shb and lt == [1, 113] for at, lt in linktypes.items())
    # Every start in the big-endian section is swapped, with its own interfaces only.
    third_shb = data.index(shb("<")[:8], second_shb)
    inside = [s for at, s in found.items() if second_shb < at < third_shb]
    assert inside and all(s.swapped for s in inside)
    assert {tuple(i.linktype for i in s.interfaces) for s in inside} <= {(1,), (1, 101)}
    assert Interface(101, 0, 20, True, 0) in inside[-1].interfaces


def test_every_buffer_start_of_a_capture_of_sections(tmp_path: Path, small_buffers: Small) -> None:
    cap = sections_capture(tmp_path / "sections.pcapng")
    small_buffers(fit(cap))
    whole = one(cap)
    assert '"tunnel.outer_fragmented"' in whole and '"ipv4.fragment.zero_length"' in whole
    cuts = starts(cap)
    assert len(cuts) >= 10
    assert split(cap, cuts) == whole  # every buffer a range of its own
    for at in cuts:
        assert split(cap, [at]) == whole
        assert split(cap, [at - 5]) == whole  # the next buffer start


def test_a_cut_at_a_section_header_and_inside_a_byte_order_flip(
    tmp_path: Path, small_buffers: Small
) -> None:
    cap = sections_capture(tmp_path / "sections.pcapng")
    data = cap.read_bytes()
    second = data.index(shb(">")[:8])
    for size in range(fit(cap), 2 * fit(cap), 4):  # a buffer size that starts one there
        small_buffers(size)
        if second in starts(cap):
            break
    else:
        pytest.fail("no buffer size starts a buffer at the second section")
    whole = one(cap)
    [(at, section)] = range_starts(str(cap), [second])
    assert at == second
    assert section.swapped is False  # the section before it, not its own
    assert split(cap, [second]) == whole


def test_incidents_split_at_every_buffer(tmp_path: Path, small_buffers: Small) -> None:
    for name, frames in (
        ("inc1", incidents.incident1_poison_fragment()),
        ("inc2", incidents.incident2_stp_llc(seconds=2)),
        ("inc3", incidents.incident3_pptp(flows=40)),
    ):
        cap = tmp_path / f"{name}.pcapng"
        with open(cap, "wb") as fh:
            w = PcapngWriter(fh)
            for ts, frame in frames:
                w.packet(ts, frame)
        small_buffers(fit(cap))
        cuts = starts(cap)
        assert cuts, name
        assert split(cap, cuts) == one(cap), name
        assert split(cap, cuts[len(cuts) // 2 :: 7]) == one(cap), name


def test_the_tcpdump_corpus_as_one_file_of_45_sections(
    tmp_path: Path, small_buffers: Small
) -> None:
    """The corpus's pcapng files one after the other: a section each (draft section 3.1),
    link types 0, 1, 9, 104, 113 and 271, in both byte orders."""
    files = sorted(glob.glob(str(CORPUS / "*.pcapng")))
    if not files:
        pytest.skip(f"the tcpdump corpus is not at {CORPUS}")
    cap = tmp_path / "corpus.pcapng"
    cap.write_bytes(b"".join(Path(f).read_bytes() for f in files))
    small_buffers(fit(cap))
    whole = one(cap)
    cuts = starts(cap)
    assert len(cuts) > 10
    assert split(cap, cuts) == whole
    assert split(cap, cuts[1::3]) == whole
    if shutil.which("tshark") is not None:
        doc = scan_document(scan([str(cap)]))
        assert doc["inputs"][0]["packets"] == tshark_frames(cap)


def test_a_slice_of_the_bench_mix_in_worker_processes(tmp_path: Path) -> None:
    """Default reader buffers (CHUNK_BYTES), in worker processes."""
    cap = write_pcapng(tmp_path / "mix.pcapng", mixed_capture(50_000, id_pool=16))
    size = cap.stat().st_size
    assert size > 2 * CHUNK_BYTES
    whole = one(cap)
    jobs = plan([str(cap)], 3, 2, split_at={str(cap): [size // 3, 2 * size // 3]})[0]
    assert len(jobs) == 3 and all(isinstance(j, RangeJob) for j in jobs)
    assert split(cap, [size // 3, 2 * size // 3], processes=True) == whole
    assert split(cap, [size // 2]) == whole


def test_only_the_workers_walk_and_each_walks_once(
    tmp_path: Path, small_buffers: Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process reads the first range at once: the walks to the other ranges' starts
    are the workers' (split_pcapng.find_start). A worker reading consecutive ranges walks
    once, to the first one's start: each range's reader stops where the next starts, and
    the worker remembers it, and tells the other workers (planning.sharing). Run here one
    job after the other: one walk for six ranges, which join up."""
    small_buffers(1 << 16)
    cap = write_pcapng(tmp_path / "mix.pcapng", mixed_capture(3_000, id_pool=16))
    whole, size = one(cap), cap.stat().st_size
    parent = os.getpid()
    real = split_pcapng.range_starts
    walks: list[int] = []
    pooled = True  # the scan with worker processes, then jobs run here

    def counted(
        path: str, targets: list[int], *, since: tuple[int, Section] = (0, Section())
    ) -> list[tuple[int, Section]]:
        assert not pooled or os.getpid() != parent, "the parent walked to a range"
        walks.append(since[0])
        return real(path, targets, since=since)

    monkeypatch.setattr(split_pcapng, "range_starts", counted)
    targets = [size * k // 7 for k in range(1, 7)]
    assert split(cap, targets[:3], processes=True) == whole
    pooled = False
    split_pcapng.forget()
    jobs = plan([str(cap)], 3, 2, split_at={str(cap): targets})[0]
    parts = [run_job(job) for job in jobs[1:]]  # what one worker beside this process reads
    assert walks == [0]
    spans = [p.span for p in parts if isinstance(p, Part)]
    assert len(spans) == 6 and all(s.start is not None for s in spans) and spans[-1].final
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    # Each job in a process of its own: alone, each walks from the file's start; sharing
    # a folder, they find where the ranges before theirs ended.
    for root, expected in ((None, [0] * 6), (str(tmp_path / "shared"), [0])):
        walks.clear()
        for job in jobs[1:]:
            split_pcapng.forget()
            part = run_job(job if root is None else scale.sharing(job, root))
            assert isinstance(part, Part) and part.span.start is not None
        assert walks == expected


@pytest.mark.parametrize("processes", [False, True])
def test_a_file_rewritten_in_place_is_walked_anew(
    tmp_path: Path, small_buffers: Small, processes: bool
) -> None:
    """helper-41's find: a capture rewritten with the same size and modification time
    (cp -p, rsync -t, tar x) kept the starts a split scan had found, with their sections:
    the next split scan entered its ranges with the old file's interfaces (Ethernet for
    raw IP here), and the ranges still joined. Each scan now forgets the starts first,
    and a start is known for a file as it is (its change time)."""

    def capture(linktype: int) -> bytes:
        ip = craft.ipv4(IS, ID_, craft.udp(IS, ID_, 5000, 53, bytes(114)), 17)
        body = craft.ether(ip[:-14], 0x0800) if linktype == 1 else ip  # the same length
        packets = [epb("<", 0, 10**15 + k, body) for k in range(200)]
        return b"".join([shb("<"), idb("<", linktype), *packets])

    small_buffers(4096)
    cap = tmp_path / "rewritten.pcapng"
    cap.write_bytes(capture(1))
    before = os.stat(cap)
    targets = [before.st_size // 2]
    assert split(cap, targets, processes=processes) == one(cap)
    cap.write_bytes(capture(101))
    os.utime(cap, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(cap).st_size, os.stat(cap).st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    whole = one(cap)
    assert '"101": 200' in whole
    assert split(cap, targets, processes=processes) == whole
    # And a start this process knows is not used for the file once it has changed.
    bogus = (targets[0] + 4, Section(swapped=True))
    split_pcapng.forget()
    split_pcapng.remember(str(cap), targets[0], *bogus)
    assert split_pcapng.find_start(str(cap), targets[0]) == bogus
    os.utime(cap, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert split_pcapng.find_start(str(cap), targets[0]) not in (bogus, None)


def test_ranges_located_before_they_are_sent(
    tmp_path: Path, small_buffers: Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For workers that share no folder (--dask), the client walks the file once and
    sends each range with its start (planning.located): no worker walks, the ranges past
    the file's last buffer start are left out, and the JSON is one process's."""
    small_buffers(1 << 16)
    cap = write_pcapng(tmp_path / "mix.pcapng", mixed_capture(3_000, id_pool=16))
    whole, size = one(cap), cap.stat().st_size
    targets = [size // 3, 2 * size // 3, size - 10]  # no buffer starts past the last
    jobs = located(plan([str(cap)], 3, 2, split_at={str(cap): targets}))
    ranges = [j for j in jobs[0] if isinstance(j, RangeJob)]
    assert len(ranges) == 3 and ranges[-1].last and ranges[-1].end == size
    assert [j.begins for j in ranges[1:]] == range_starts(str(cap), targets[:2])

    def no_walk(path: str, target: int, shared: str | None = None) -> None:
        raise AssertionError("a worker walked")

    monkeypatch.setattr(worker, "find_start", no_walk)
    merged = scale.assemble(jobs, map(run_job, [j for js in jobs for j in js]), None)
    assert dumps(scan_document(merged)) == whole


def test_a_corrupt_block_length_in_the_middle(tmp_path: Path, small_buffers: Small) -> None:
    """The walk stops where the reader stops: no range starts after the corrupt block,
    and the range holding it reports it, its frame numbers shifted, as one process does;
    the ranges after it read nothing."""
    cap = sections_capture(tmp_path / "sections.pcapng")
    small_buffers(fit(cap))
    data = bytearray(cap.read_bytes())
    cuts = starts(cap)
    at = cuts[len(cuts) // 2]
    bad_at = next(c for c in cuts[len(cuts) // 2 :] if data[c : c + 4] == b"\x06\x00\x00\x00")
    data[bad_at + 4 : bad_at + 8] = struct.pack("<I", 13)  # not a multiple of 4
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(data))
    whole = one(bad)
    assert '"capture.corrupt_record"' in whole
    assert max(starts(bad)) < bad_at
    assert split(bad, cuts) == whole
    assert split(bad, [at]) == whole
    # With worker processes, the first range read in this one (Assembler.add_head).
    assert split(bad, [at], processes=True) == whole


def test_a_range_that_does_not_end_cleanly_reads_the_file_in_one_piece(
    tmp_path: Path, small_buffers: Small
) -> None:
    """The file corrupted after it was planned: the range holding the damage stops short
    of the next range's start, which no walk reaches then: the ranges after it read
    nothing, and the result is one process's."""
    cap = sections_capture(tmp_path / "sections.pcapng")
    small_buffers(fit(cap))
    cuts = starts(cap)
    jobs = plan([str(cap)], 3, 2, split_at={str(cap): cuts})
    data = bytearray(cap.read_bytes())
    first = jobs[0][0]
    assert isinstance(first, RangeJob) and not first.last
    data[first.end - 4 : first.end] = struct.pack("<I", 0xFFFC)  # its last block's trailer
    cap.write_bytes(bytes(data))
    part = run_job(first)
    assert part.res.issues
    merged = scale.assemble(jobs, map(run_job, [j for js in jobs for j in js]), None)
    assert dumps(scan_document(merged)) == one(cap)
    assert '"capture.corrupt_record"' in one(cap)


def test_a_mended_block_in_a_middle_range_keeps_the_split(
    tmp_path: Path, small_buffers: Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A packet block that claims more bytes than it holds is clipped and the reading goes
    on: the range that holds it ends where the next starts, so the split stands (no
    reading the file again in one piece) and the issue is numbered in the file."""
    cap = sections_capture(tmp_path / "sections.pcapng")
    small_buffers(fit(cap))
    data = bytearray(cap.read_bytes())
    cuts = starts(cap)
    epb_at = data.index(b"\x06\x00\x00\x00", cuts[1])  # an EPB of the little-endian section
    assert epb_at < cuts[-1]
    data[epb_at + 20 : epb_at + 24] = struct.pack("<I", 0xFFFF)  # captured length
    cap.write_bytes(bytes(data))
    whole = one(cap)
    assert "claim more bytes than they hold; clipped" in whole
    jobs = plan([str(cap)], 3, 2, split_at={str(cap): cuts})
    holder = [j for j in jobs[0] if isinstance(j, RangeJob) and j.start <= epb_at < j.end]
    assert holder and not holder[0].last and run_job(holder[0]).res.issues

    def no_second_read(job: FileJob) -> None:
        raise AssertionError(f"{job.path} read again in one piece")

    monkeypatch.setattr(assembly, "run_file", no_second_read)
    merged = scale.assemble(jobs, map(run_job, [j for js in jobs for j in js]), None)
    assert dumps(scan_document(merged)) == whole


def test_unsplittable_inputs_stay_whole(tmp_path: Path) -> None:
    cap = tmp_path / "x.pcapng"
    cap.write_bytes(b"".join([shb("<"), idb("<", 1), epb("<", 0, 0, bytes(60))]))
    gz = tmp_path / "x.pcapng.gz"
    subprocess.run(["gzip", "-k", str(cap)], check=True)
    jobs = plan([str(gz)], 3, 2, split_at={str(gz): [8, 40]})[0]
    assert jobs == [FileJob(str(gz), 3)]
    # One reader buffer holds the whole file: the ranges after the first find no start
    # and read nothing.
    assert find_start(str(cap), 8) is None and find_start(str(cap), 40) is None
    assert split(cap, [8, 40]) == one(cap)
    assert find_start(str(tmp_path / "missing.pcapng"), 10) is None


def packet_block(frame: bytes, *, wirelen: int, drops: int, flags: int, order: str = "<") -> bytes:
    """The obsolete Packet Block (draft appendix A): a 16-bit interface id and a drops
    count where the EPB has its 32-bit id, then the same fields, data and options; its
    pack_flags option has epb_flags' code (2) and layout."""
    head = struct.pack(order + "HHIIII", 0, drops, 0, T0, len(frame), wirelen)
    opts = option(order, 2, struct.pack(order + "I", flags)) + option(order, 0, b"")
    return block(order, 2, b"".join([head, frame, bytes(-len(frame) % 4), opts]))


@pytest.mark.parametrize("order", ["<", ">"])
def test_the_obsolete_packet_block(tmp_path: Path, order: str) -> None:
    """Issue 14's mend: the reader once read a PB's original length through a where() whose
    two branches were equal. They were equal rightly (same offset as in an EPB); what
    differed and was missed are the PB's options: its pack_flags direction was ignored,
    so a zero checksum on an outbound packet read as bad, not as offload."""
    s, d = "192.0.2.1", "198.51.100.7"
    zero = craft.ether(craft.ipv4(s, d, craft.udp(s, d, 1, 2, b"x"), 17, checksum=0), 0x0800)
    cap = tmp_path / "pb.pcapng"
    cap.write_bytes(
        b"".join(
            [
                shb(order),
                idb(order, 1),
                # Both byte orders: the 16-bit id is the block's first two bytes in either.
                packet_block(zero, wirelen=len(zero) + 40, drops=7, flags=2, order=order),
                packet_block(zero, wirelen=len(zero), drops=0xFFFF, flags=1, order=order),
            ]
        )
    )
    [batch] = list(open_capture(str(cap)).batches())
    assert batch.wirelen.tolist() == [len(zero) + 40, len(zero)]
    assert batch.direction is not None and batch.direction.tolist() == [2, 1]
    assert batch.linktype.tolist() == [1, 1]  # interface 0, whatever the drops count
    got = {f.id: f.packets for f in scan([str(cap)]).findings}
    assert got["ipv4.checksum_offload"] == (1,)
    assert got["ipv4.bad_checksum"] == (2,)
    if shutil.which("tshark") is not None:
        fields = ["-e", "frame.len", "-e", "frame.packet_flags_direction"]
        out = subprocess.run(
            ["tshark", "-r", str(cap), "-T", "fields", *fields],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert [int(x, 0) for x in out] == [len(zero) + 40, 2, len(zero), 1]


def test_a_packet_of_an_undescribed_interface(tmp_path: Path, small_buffers: Small) -> None:
    """A read issue that does not stop the reader, in any range: the same findings."""
    cap = sections_capture(tmp_path / "sections.pcapng")
    small_buffers(fit(cap))
    data = bytearray(cap.read_bytes())
    epbs = [at for at, _ in blocks(bytes(data)) if data[at : at + 4] == b"\x06\x00\x00\x00"]
    data[epbs[3] + 8 : epbs[3] + 12] = struct.pack("<I", 7)
    odd = tmp_path / "odd.pcapng"
    odd.write_bytes(bytes(data))
    whole = one(odd)
    assert "never described" in whole
    cuts = starts(odd)
    assert split(odd, cuts) == whole
    for at in cuts[::2]:
        assert split(odd, [at]) == whole


def test_range_starts_are_where_the_reader_refills(
    tmp_path: Path, small_buffers: Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk's buffer starts, and only those, are where one reader refills its buffer
    with bytes still to walk (the invariant every split above relies on)."""
    cap = sections_capture(tmp_path / "sections.pcapng")
    seen: list[int] = []
    real = Chunker.refill

    def refill(self: Chunker, keep_from: int, step: Callable[[], None]) -> None:
        real(self, keep_from, step)
        if self.have:
            seen.append(self.base)

    for size in (fit(cap), fit(cap) + 100, 4096, 8192):
        small_buffers(size)
        monkeypatch.setattr(Chunker, "refill", refill)
        seen.clear()
        assert sum(len(b) for b in open_capture(str(cap)).batches()) == 20
        refills = [at for at in seen if at > 0]
        monkeypatch.setattr(Chunker, "refill", real)
        assert refills and starts(cap) == refills, size


def test_the_first_range_is_read_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pcapng file's first range ends where a reader buffer starts, so this process
    reads all of it at once (Assembler.add_head): nothing held, nothing replayed."""
    cap = write_pcapng(tmp_path / "mix.pcapng", mixed_capture(24_000, id_pool=16))
    size, whole = cap.stat().st_size, one(cap)
    heads, at_once = watch_heads(monkeypatch)
    assert split(cap, [size // 2, 3 * size // 4], processes=True) == whole
    assert heads == [0] and len(at_once) >= 1
    first = plan([str(cap)], 3, 2, split_at={str(cap): [size // 2, 3 * size // 4]})[0][0]
    assert isinstance(first, RangeJob) and first.start == 0 and first.end > 0
    # Every record of the first range went through the checks at once.
    reader = scale.open_range(first)
    assert reader is not None and sum(at_once) == sum(len(b) for b in reader.batches())


def test_faults_a_reader_mends_are_one_finding_however_the_file_is_cut(
    tmp_path: Path, small_buffers: Small
) -> None:
    """Packets whose timestamp no clock gives, in several ranges: one process adds them up
    to one capture.corrupt_record (its first packet's frame, the count of packets); the
    ranges' issues are added up the same way, not one finding a range."""
    frame = bytes(range(256)) * 5 + bytes(120)
    never = (1 << 64) - 1
    bad = {2, 150, 350}
    cap = tmp_path / "clockless.pcapng"
    cap.write_bytes(
        shb()
        + idb("<", 1)
        + b"".join(epb("<", 0, never if k in bad else T0 * 10**6 + k, frame) for k in range(400))
    )
    small_buffers(64 << 10)
    whole = one(cap)
    assert whole.count('"capture.corrupt_record"') == 1
    assert '"count": 3' in whole and "3 packet(s) have a timestamp" in whole
    cuts = starts(cap)
    assert len(cuts) > 5
    assert split(cap, cuts) == whole
    assert split(cap, cuts[1::2]) == whole


LINUX_OS, WINDOWS_OS = "Linux 6.16.8-arch2-1", "64-bit Windows 10 (22H2), build 19045"


def os_sections_capture(path: Path) -> tuple[Path, list[str]]:
    """Three sections, each of an IPv4 header checksum of zero on every packet: Linux
    (little-endian), Windows, Linux (big-endian): where each packet is, by section OS."""
    zero = [
        craft.ether(craft.ipv4("192.0.2.1", f"198.51.100.{k}", bytes(30), 17, checksum=0), 0x0800)
        for k in range(1, 13)
    ]
    out, where, ts = [], [], T0 * 10**6
    for os_, order in ((LINUX_OS, "<"), (WINDOWS_OS, "<"), (LINUX_OS, ">")):
        out += [shb(order, os_), idb(order, 1)]
        for frame in zero:
            ts += 1
            out.append(epb(order, 0, ts, frame))
            where.append(os_)
    path.write_bytes(b"".join(out))
    return path, where


def test_a_linux_section_s_zero_checksums_are_bad_split_or_not(
    tmp_path: Path, small_buffers: Small
) -> None:
    """dumpcap on Linux names its OS in the section header (shb_os); Linux fills IPv4 header
    checksums in software, so a zero there is no offload, wherever the file is cut. tshark
    says which section each packet is in, capinfos the first section's OS."""
    cap, where = os_sections_capture(tmp_path / "os.pcapng")
    shown = subprocess.run(["capinfos", str(cap)], capture_output=True, text=True, check=True)
    assert f"Capture oper-sys:    {LINUX_OS}" in shown.stdout
    sections = subprocess.run(
        ["tshark", "-r", str(cap), "-T", "fields", "-e", "frame.section_number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sections == [str(1 + k // 12) for k in range(36)]
    small_buffers(fit(cap) * 3)
    whole = one(cap)
    doc = scan_document(scan([str(cap)]))
    got = {f["id"]: f["packets"] for f in doc["findings"] if "checksum" in f["id"]}
    frames = range(1, len(where) + 1)
    assert got == {
        "ipv4.bad_checksum": [k for k in frames if where[k - 1] == LINUX_OS],
        "ipv4.checksum_offload": [k for k in frames if where[k - 1] == WINDOWS_OS],
    }
    for at in starts(cap):
        assert split(cap, [at]) == whole


def test_an_unreadable_first_section_header_is_not_split(tmp_path: Path) -> None:
    """Refused whole (capture.open_capture: exit 2) with workers as without: split, each
    range found no block and the run said nothing was wrong, exit 0."""
    cap = sections_capture(tmp_path / "sections.pcapng")
    data = bytearray(cap.read_bytes())
    data[8:12] = b"\x78\x56\x34\x12"  # neither byte-order magic
    cap.write_bytes(bytes(data))
    assert not split_pcapng.is_pcapng(str(cap))
    jobs = plan([str(cap)], 3, 2, split_at={str(cap): starts(cap)[1:] or [len(data) // 2]})
    assert jobs == [[FileJob(str(cap), 3)]]
    assert split(cap, [len(data) // 2]) == one(cap)
    assert "corrupt pcapng section header: byte-order magic 78563412" in one(cap)


def frame_only_capture(path: Path) -> Path:
    """Incident 1's packets with blocks Wireshark numbers as frames between them: custom
    blocks (copiable and not, draft section 4.8) and systemd journal export blocks."""
    parts = [shb(), idb("<", 1)]
    for k, (ts, frame) in enumerate(incidents.incident1_poison_fragment()):
        if k % 3 == 1:
            parts.append(block("<", 0x00000BAD, struct.pack("<I", 32473) + b"note %d" % k))
        if k % 7 == 2:
            parts.append(block("<", 0x40000BAD, struct.pack("<I", 32473) + b"x"))
        if k % 5 == 4:
            parts.append(block("<", 9, b"__REALTIME_TIMESTAMP=%d\nMESSAGE=m\n\n" % (ts // 1000)))
        parts.append(epb("<", 0, ts // 1000, frame))
    path.write_bytes(b"".join(parts))
    return path


@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark")
def test_blocks_wireshark_numbers_as_frames_take_frame_numbers(tmp_path: Path) -> None:
    """tshark 4.0 numbers custom and journal blocks as frames: every packet after one was
    a frame number lower here than in Wireshark, findings and exports alike."""
    cap = frame_only_capture(tmp_path / "meta.pcapng")
    theirs = subprocess.run(
        ["tshark", "-r", str(cap), "-Y", "eth", "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    reader = open_capture(str(cap))
    ours = [int(f) for b in reader.batches() for f in b.frame]
    assert ours == [int(f) for f in theirs]
    assert ours[-1] > len(ours)  # the blocks took numbers


def test_blocks_numbered_as_frames_split_at_every_buffer(
    tmp_path: Path, small_buffers: Small
) -> None:
    cap = frame_only_capture(tmp_path / "meta.pcapng")
    small_buffers(fit(cap))
    cuts = starts(cap)
    assert cuts
    assert split(cap, cuts) == one(cap)
    assert split(cap, cuts[1::3], processes=True) == one(cap)


def fcs_capture(path: Path) -> Path:
    """One section, two Ethernet interfaces: the first declares a 4-byte FCS (if_fcslen),
    the second nothing, but some of its packets do (epb_flags). Each frame ends in its FCS
    where one is declared: the open trains (splitutil, on the three in turn), a
    minimum-size frame padded with non-zero bytes (Etherleak), and a fragment train whose
    first fragment's total length is 0, as TSO leaves it: as long as its frame says, so
    the datagram is whole where the FCS is left out and overlaps its next fragment by the
    FCS where it is not."""
    data = bytes(range(256)) * 4
    head = craft.ipv4(IS, ID_, data[:512], 17, ident=77, flags=1, total_length=0)
    tail = craft.ipv4(IS, ID_, data[512:], 17, ident=77, frag_off=512)
    leak = craft.ipv4(IS, ID_, craft.udp(IS, ID_, 53, 53, b""), 17)
    # (frame, how): 0 on interface 0, 1 on interface 1, 2 on interface 1 with epb_flags.
    frames = [(craft.ether(p, 0x0800), k % 3) for k, p in enumerate(open_trains())]
    frames[4:4] = [(craft.ether(head, 0x0800), 0)]
    frames[9:9] = [(craft.pad(craft.ether(leak, 0x0800), fill=0xAB), 2)]
    frames.append((craft.ether(tail, 0x0800), 0))
    out = [shb(), idb("<", 1, fcslen=4), idb("<", 1)]
    for k, (frame, how) in enumerate(frames):
        opts = fcs_flags("<", 4) if how == 2 else b""
        body = frame if how == 1 else with_fcs(frame)
        out.append(epb("<", min(how, 1), (T0 + k) * 10**6, body, opts=opts))
    path.write_bytes(b"".join(out))
    return path


def test_a_declared_fcs_split_or_not(tmp_path: Path, small_buffers: Small) -> None:
    """A range knows its section's interfaces, their if_fcslen with them, and the packets
    it hands the parent for the fragment audit carry theirs: the same JSON wherever the
    file is cut, as in one process, which takes each declared FCS (the Etherleak frame's
    padding found, the fragment of total length 0 whole without it)."""
    cap = fcs_capture(tmp_path / "fcs.pcapng")
    small_buffers(fit(cap))
    whole = one(cap)
    ids = {f["id"]: f["packets"] for f in json.loads(whole)["findings"]}
    assert ids["l2.padding_nonzero"] == [10] and not any("overlap" in i for i in ids)
    cuts = starts(cap)
    assert len(cuts) >= 5
    for at in cuts:
        assert split(cap, [at]) == whole
    assert split(cap, cuts[len(cuts) // 2 :: 2], processes=True) == whole
