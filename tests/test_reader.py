"""Capture reading: formats, byte orders, resolutions, streaming, and broken files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from netsleuth.capture import RecordBatch, chunks, open_capture
from netsleuth.errors import InputError, NotACaptureError
from tests.capfiles import block, epb, idb, option, pcap_bytes, shb, spb


def read_all(path: Path, **kw: int) -> tuple[list[RecordBatch], list[str]]:
    reader = open_capture(str(path), **kw)
    batches = list(reader.batches())
    return batches, [i.id for i in reader.issues]


def packets(batches: list[RecordBatch]) -> list[bytes]:
    return [b.packet(i) for b in batches for i in range(len(b))]


def cat(batches: list[RecordBatch], field: str) -> list[int]:
    return [int(x) for b in batches for x in getattr(b, field)]


DATA = [bytes([i]) * (60 + 7 * i) for i in range(3)]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, order: str, nano: bool) -> None:
    frac = [999_999, 5, 123_456]
    recs = [(1_600_000_000 + i, frac[i], d) for i, d in enumerate(DATA)]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(recs, order=order, nano=nano))
    batches, issues = read_all(path)
    assert issues == []
    assert packets(batches) == DATA
    mult = 1 if nano else 1000
    assert cat(batches, "ts_ns") == [
        (1_600_000_000 + i) * 1_000_000_000 + frac[i] * mult for i in range(3)
    ]
    assert cat(batches, "frame") == [1, 2, 3]
    assert cat(batches, "linktype") == [1, 1, 1]


def test_pcap_snapped_record_keeps_wire_length(tmp_path: Path) -> None:
    path = tmp_path / "snap.pcap"
    path.write_bytes(pcap_bytes([(1, 0, b"\xaa" * 64, 1514)], snaplen=64))
    batches, _ = read_all(path)
    assert cat(batches, "caplen") == [64]
    assert cat(batches, "wirelen") == [1514]


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_link_types_and_unknown_blocks(tmp_path: Path, order: str) -> None:
    unknown = struct.pack(order + "II", 0x0BAD, 16) + b"zzzz" + struct.pack(order + "I", 16)
    raw_ip = bytes.fromhex("4500001c0001000040110000c0000201c0000202")
    body = (
        shb(order)
        + idb(order, 1)  # Ethernet, microsecond default
        + idb(order, 101, tsresol=9)  # raw IP, nanoseconds
        + unknown
        + epb(order, 0, 1_000_000, DATA[0])
        + epb(order, 1, 2_000_000_000, raw_ip)
        + spb(order, DATA[1])
    )
    path = tmp_path / "x.pcapng"
    path.write_bytes(body)
    batches, issues = read_all(path)
    assert issues == []
    assert packets(batches) == [DATA[0], raw_ip, DATA[1]]
    assert cat(batches, "linktype") == [1, 101, 1]
    # 1e6 microseconds = 1 s; 2e9 nanoseconds = 2 s; the SPB carries no timestamp.
    assert cat(batches, "ts_ns") == [1_000_000_000, 2_000_000_000, 0]


def test_pcapng_second_section_resets_interfaces_and_byte_order(tmp_path: Path) -> None:
    body = (
        shb("<")
        + idb("<", 1)
        + epb("<", 0, 1, DATA[0])
        + shb(">")
        + idb(">", 113)
        + epb(">", 0, 2, DATA[1])
    )
    path = tmp_path / "two.pcapng"
    path.write_bytes(body)
    batches, issues = read_all(path)
    assert issues == []
    assert cat(batches, "linktype") == [1, 113]
    assert packets(batches) == DATA[:2]
    assert cat(batches, "frame") == [1, 2]


def test_pcapng_section_of_another_major_version_is_skipped(tmp_path: Path) -> None:
    """draft-ietf-opsawg-pcapng section 4.1: a major version other than 1 means a reader of
    version 1 cannot read the section, and it skips the section's blocks up to the next
    section header. The old code read them as version 1 blocks, silently."""
    v2 = block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 2, 0, -1))
    first = [shb("<"), idb("<", 1), epb("<", 0, 1, DATA[0])]
    skipped = [v2, idb("<", 113), epb("<", 0, 2, DATA[1]), epb("<", 0, 3, DATA[1])]
    third = [shb("<"), idb("<", 1), epb("<", 0, 4, DATA[2])]
    path = tmp_path / "v2.pcapng"
    path.write_bytes(b"".join([*first, *skipped, *third]))
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert packets(batches) == [DATA[0], DATA[2]]
    assert cat(batches, "frame") == [1, 2] and cat(batches, "linktype") == [1, 1]
    [issue] = reader.issues
    assert (issue.id, issue.frame, issue.offset) == ("capture.corrupt_record", 2, 140)
    assert issue.summary == (
        "1 section(s) of a pcapng major version other than 1 skipped to the next section header"
    )


def test_gzip_is_unwrapped(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap.gz"
    path.write_bytes(gzip.compress(pcap_bytes([(1, 0, d) for d in DATA])))
    reader = open_capture(str(path))
    assert reader.compressed
    assert packets(list(reader.batches())) == DATA


def test_truncated_gzip_keeps_packets_before_the_cut(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    recs = [(1, 0, rng.bytes(100)) for _ in range(500)]  # random: compresses ~1:1
    whole = gzip.compress(pcap_bytes(recs))
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(whole[: len(whole) // 2])
    reader = open_capture(str(path))
    got = packets(list(reader.batches()))
    assert 150 < len(got) < 350
    assert got == [r[2] for r in recs[: len(got)]]
    assert [i.id for i in reader.issues] == ["capture.truncated_file"]


@pytest.mark.parametrize("fault", ["crc", "trailing-garbage"])
def test_gzip_refused_at_its_end_keeps_every_packet(tmp_path: Path, fault: str) -> None:
    """A member whose trailer's CRC-32 is wrong (RFC 1952 section 2.3.1), or bytes after
    the last member that start no member: zlib refuses the call that reaches them, output
    and all, and the old code lost every packet of a file this small (read failed, exit
    2). Every packet that inflated before the fault is read now, and the file is named
    truncated (what followed may have been a member, cut)."""
    rng = np.random.default_rng(2)
    recs = [(1, 0, rng.bytes(100)) for _ in range(500)]
    whole = gzip.compress(pcap_bytes(recs))
    if fault == "crc":
        bad = whole[:-8] + bytes(b ^ 0xFF for b in whole[-8:-4]) + whole[-4:]
    else:
        bad = whole + bytes(64) + b"junk" + bytes(64)
    path = tmp_path / "bad.pcap.gz"
    path.write_bytes(bad)
    reader = open_capture(str(path))
    assert packets(list(reader.batches())) == [r[2] for r in recs]
    [issue] = reader.issues
    assert issue.id == "capture.truncated_file"
    check = "incorrect data check" if fault == "crc" else "incorrect header check"
    assert issue.summary.startswith("the compressed stream ended early (corrupt compressed data")
    assert check in issue.summary


@pytest.mark.parametrize("zeros", [1, 64, 200_000])
def test_gzip_padded_with_zeros_is_whole(tmp_path: Path, zeros: int) -> None:
    """Zero bytes after the last member are a writer's padding (a tape's or a block
    device's: GNU gzip says "trailing zero bytes ignored"), not a cut file: every packet
    and no finding, past one read of the inflater (64 KiB) too. They were a
    capture.truncated_file for an hour (and, before, a read error with no packet)."""
    recs = [(1, 0, bytes([k % 256]) * 60) for k in range(300)]
    path = tmp_path / "padded.pcap.gz"
    path.write_bytes(gzip.compress(pcap_bytes(recs)) + bytes(zeros))
    reader = open_capture(str(path))
    assert packets(list(reader.batches())) == [r[2] for r in recs]
    assert reader.issues == []


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    data = pcap_bytes([(1, 0, d) for d in DATA])
    path = tmp_path / "multi.pcap.gz"
    path.write_bytes(gzip.compress(data[:50]) + gzip.compress(data[50:]))
    assert packets(list(open_capture(str(path)).batches())) == DATA


def test_file_cut_mid_record_yields_earlier_packets(tmp_path: Path) -> None:
    whole = pcap_bytes([(1, 0, d) for d in DATA])
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole[:-10])
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert packets(batches) == DATA[:2]
    assert [(i.id, i.frame) for i in reader.issues] == [("capture.truncated_file", 3)]
    assert reader.issues[0].offset == 24 + 2 * 16 + len(DATA[0]) + len(DATA[1])


def test_absurd_record_length_stops_with_corrupt_record(tmp_path: Path) -> None:
    good = pcap_bytes([(1, 0, DATA[0])])
    bad = struct.pack("<IIII", 2, 0, 0x7FFFFFF0, 0x7FFFFFF0) + b"x" * 100
    path = tmp_path / "bad.pcap"
    path.write_bytes(good + bad)
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert packets(batches) == [DATA[0]]
    assert [(i.id, i.frame) for i in reader.issues] == [("capture.corrupt_record", 2)]


def test_pcapng_block_with_mismatched_trailer_is_corrupt(tmp_path: Path) -> None:
    good = shb() + idb("<", 1) + epb("<", 0, 1, DATA[0])
    broken = bytearray(epb("<", 0, 2, DATA[1]))
    broken[-4:] = struct.pack("<I", 12)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(good + bytes(broken))
    batches, issues = read_all(path)
    assert packets(batches) == [DATA[0]]
    assert issues == ["capture.corrupt_record"]


def test_not_a_capture_names_the_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(NotACaptureError) as err:
        open_capture(str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: not a capture file")
    assert "'GET / HTTP/1.1" in msg


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(NotACaptureError, match="the file is empty"):
        open_capture(str(empty))
    with pytest.raises(InputError, match="No such file"):
        open_capture(str(tmp_path / "missing.pcap"))


def test_short_pcap_header_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "short.pcap"
    path.write_bytes(pcap_bytes([])[:10])
    with pytest.raises(InputError, match="truncated pcap file header"):
        open_capture(str(path))


def test_many_records_cross_buffers_and_batches(tmp_path: Path) -> None:
    """70 000 records: more than one batch (65 536) and many buffer refills."""
    rng = np.random.default_rng(7)
    sizes = rng.integers(14, 200, 70_000)
    recs = [(i, 0, bytes([i & 0xFF]) * int(s)) for i, s in enumerate(sizes)]
    path = tmp_path / "many.pcap"
    path.write_bytes(pcap_bytes(recs))
    batches, issues = read_all(path, chunk_bytes=1 << 16)
    assert issues == []
    assert len(batches) > 2
    assert cat(batches, "caplen") == [int(s) for s in sizes]
    assert cat(batches, "frame") == list(range(1, 70_001))
    assert all(b.packet(0)[0] == (int(b.frame[0]) - 1) & 0xFF for b in batches)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_many_blocks_small_buffers(tmp_path: Path, order: str) -> None:
    """Every packet's fields through 3000 blocks in buffers of 4 KiB (several walks a
    batch): the lengths, times, interfaces and directions the blocks were written with.
    The walk's output array is reused from walk to walk; a batch holding a view of it had
    the next buffer's wire lengths."""

    def flags(i: int) -> bytes:  # epb_flags (code 2): inbound 1, outbound 2, none
        return b"" if i % 3 == 0 else option(order, 2, struct.pack(order + "I", i % 3))

    def caplen(i: int) -> int:
        return 40 + i % 50

    body = (
        shb(order)
        + idb(order, 1)
        + idb(order, 101, tsresol=9)
        + b"".join(
            epb(
                order,
                i % 2,
                i,
                bytes([i & 0xFF]) * caplen(i),
                wirelen=caplen(i) + i % 7,
                opts=flags(i) + option(order, 0, b""),
            )
            for i in range(3000)
        )
    )
    path = tmp_path / "many.pcapng"
    path.write_bytes(body)
    batches, issues = read_all(path, chunk_bytes=4096)
    assert issues == []
    assert cat(batches, "caplen") == [caplen(i) for i in range(3000)]
    assert cat(batches, "wirelen") == [caplen(i) + i % 7 for i in range(3000)]
    # Interface 0 counts microseconds, interface 1 nanoseconds.
    assert cat(batches, "ts_ns") == [i if i % 2 else i * 1000 for i in range(3000)]
    assert cat(batches, "iface") == [i % 2 for i in range(3000)]
    assert cat(batches, "linktype") == [101 if i % 2 else 1 for i in range(3000)]
    assert cat(batches, "direction") == [i % 3 for i in range(3000)]
    assert packets(batches) == [bytes([i & 0xFF]) * caplen(i) for i in range(3000)]


def clockless_capture(path: Path) -> tuple[Path, int]:
    """400 Ethernet packets in microseconds, the 3rd and the 351st at a timestamp past
    what 64 bits of nanoseconds hold (year 2262: the reader writes 0), in buffers of 64
    KiB; and the byte offset of the 3rd packet's block."""
    frame = bytes(range(256)) * 5 + bytes(120)  # 1400 bytes
    never = (1 << 64) - 1  # microseconds: ~584,000 years
    head = shb() + idb("<", 1)
    packets = [
        epb("<", 0, never if k in (2, 350) else 1_700_000_000_000_000 + k, frame)
        for k in range(400)
    ]
    path.write_bytes(head + b"".join(packets))
    return path, len(head) + 2 * len(packets[0])


def test_pcapng_faults_alike_add_up_to_one_issue(tmp_path: Path) -> None:
    """A fault the reader mends (here a timestamp no clock gives) in several buffers is one
    issue: the count of packets, the first one's frame and offset. It was one per buffer,
    each with the buffer's first frame."""
    path, offset = clockless_capture(tmp_path / "c.pcapng")
    reader = open_capture(str(path), chunk_bytes=64 << 10)
    batches = list(reader.batches())
    assert len(batches) > 5
    assert sum(len(b) for b in batches) == 400
    (issue,) = reader.issues
    assert (issue.id, issue.count, issue.frame, issue.offset, issue.stops) == (
        "capture.corrupt_record",
        2,
        3,
        offset,
        False,
    )
    assert issue.summary.startswith("2 packet(s) have a timestamp that no clock gives")
    ts = np.concatenate([b.ts_ns for b in batches])
    assert ts[2] == ts[350] == 0 and ts[3] == (1_700_000_000_000_000 + 3) * 1000


def _erf(k: int, data: bytes) -> bytes:
    """An ERF Ethernet record (type 2; Endace ERF types reference): timestamp, type,
    flags, record length, loss counter, wire length (big-endian), 2 pad bytes, data,
    zero padding to 8 bytes."""
    body = bytes(2) + data
    body += bytes(-(16 + len(body)) % 8)
    head = struct.pack("<Q", (1_700_000_000 + k) << 32) + bytes([2, 4])
    return head + struct.pack(">HHH", 16 + len(body), 0, len(data)) + body


def _pieces_capture(path: Path, kind: str) -> Path:
    """~3,000 records of 40 to 1,500 bytes, then one the file ends inside (pcapng: a
    second section of the other byte order, then a block whose trailer disagrees)."""
    frames = [bytes([k & 0xFF]) * (40 + k * 37 % 1460) for k in range(3000)]
    if kind == "pcap":
        recs = [(1_700_000_000 + k, k, f) for k, f in enumerate(frames)]
        body = pcap_bytes(recs) + struct.pack("<IIII", 0, 0, 100, 100) + bytes(10)
    elif kind == "erf":
        body = b"".join(_erf(k, f) for k, f in enumerate(frames)) + _erf(0, bytes(200))[:-50]
    else:
        flags = [option("<", 2, struct.pack("<I", k % 3)) if k % 3 else b"" for k in range(3000)]
        first = [epb("<", k % 2, k, f, opts=flags[k]) for k, f in enumerate(frames[:2000])]
        second = [epb(">", 0, k, f) for k, f in enumerate(frames[2000:])]
        bad = bytearray(epb("<", 0, 0, bytes(64)))
        bad[-4:] = struct.pack("<I", 8)
        head = [shb("<"), idb("<", 1), idb("<", 101, tsresol=9)]
        other = [spb("<", frames[0]), shb(">"), idb(">", 1)]
        body = b"".join([*head, *first, *other, *second, shb("<"), idb("<", 1), bytes(bad)])
    path.write_bytes(body)
    return path


@pytest.mark.parametrize("kind", ["pcap", "pcapng", "erf"])
def test_buffers_walked_piece_by_piece_give_the_same_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A buffer's records are walked as each piece of it is read (chunks.Walk, while the
    piece is in the CPU's cache): pieces of odd sizes, which cut records and block headers
    anywhere, give the batches and issues of one walk over each whole buffer."""
    path = _pieces_capture(tmp_path / f"c.{kind}", kind)

    def read(step: int) -> tuple[list[list[list[int]]], list[tuple[str, int, int]]]:
        monkeypatch.setattr(chunks, "STEP", step)
        reader = open_capture(str(path), chunk_bytes=64 << 10)
        fields = ("offset", "caplen", "wirelen", "ts_ns", "frame", "iface", "direction")
        got = [
            [[int(x) for x in getattr(b, f)] for f in fields if getattr(b, f) is not None]
            for b in reader.batches()
        ]
        return got, [(i.id, i.offset, i.frame) for i in reader.issues]

    whole = read(1 << 30)
    assert sum(len(b[0]) for b in whole[0]) >= 3000 and len(whole[0]) > 5
    assert whole[1] and whole[1][-1][0] in ("capture.truncated_file", "capture.corrupt_record")
    for step in (97, 1000, 4093):
        assert read(step) == whole, step


@pytest.mark.parametrize(
    ("first", "said"),
    [
        (
            b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"\x78\x56\x34\x12" + bytes(16),
            "corrupt pcapng section header: byte-order magic 78563412, "
            "neither 1a2b3c4d nor 4d3c2b1a",
        ),
        (
            shb()[:4] + struct.pack("<I", 0x7FFFFFFC) + shb()[8:],
            "corrupt pcapng section header: an impossible length (2147483644)",
        ),
        (shb()[:10], "truncated pcapng section header (10 of 28 bytes)"),
    ],
)
def test_a_pcapng_whose_first_section_header_is_unreadable_is_refused(
    tmp_path: Path, first: bytes, said: str
) -> None:
    """No block of such a file can be located: it is no readable pcapng file (exit 2, as a
    pcap file with a cut header; tshark: "isn't a capture file"). It was read as a file
    of no packet with a capture.corrupt_record and exit 0."""
    path = tmp_path / "x.pcapng"
    whole = len(first) >= 12  # a cut file holds nothing after the cut
    path.write_bytes(b"".join([first, idb("<", 1), epb("<", 0, 1, DATA[0])]) if whole else first)
    with pytest.raises(InputError) as got:
        open_capture(str(path))
    assert str(got.value) == f"{path}: {said}"


def test_a_later_unreadable_section_header_keeps_the_packets_before_it(tmp_path: Path) -> None:
    bad = b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"\x78\x56\x34\x12" + bytes(16)
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"".join([shb(), idb("<", 1), epb("<", 0, 1, DATA[0]), bad]))
    reader = open_capture(str(path))
    assert packets(list(reader.batches())) == [DATA[0]]
    assert [i.id for i in reader.issues] == ["capture.corrupt_record"]
