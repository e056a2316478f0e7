"""Endace ERF files (wiretap/erf.c, erf_record.h; the Endace ERF types reference), read as
tshark reads them: records built here field by field from the format's definition, and
by scapy's ERF writer, then checked frame by frame against tshark (lengths, timestamps,
what each record carries) and scan for scan against the same frames as a pcap file."""

from __future__ import annotations

import gzip
import json
import subprocess
import zlib
from pathlib import Path

import pytest
from scapy.utils import ERFEthernetWriter, rdpcap

from netsleuth.capture import open_capture
from netsleuth.capture.erf import ErfReader
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.craft.encap import pppoe_session
from netsleuth.craft.l2 import ether, pad
from netsleuth.craft.l3 import ipv4, ipv6
from netsleuth.craft.l4 import udp
from netsleuth.craft.mix import mixed_capture
from netsleuth.decode import decode
from netsleuth.report.jsonout import scan_document
from netsleuth.scan import scan
from tests.capfiles import pcap_bytes, with_fcs
from tests.clirun import invoke
from tests.systools import require
from tests.wireframes import document, tshark_frames, udp4, udp_frame, wire_frames, without_bytes

ETH, HDLC_POS, ATM, COLOR_ETH, IPV4, IPV6, META, PAD = 2, 1, 3, 11, 22, 23, 27, 48


def erf_ts(ns: int) -> bytes:
    """An ERF timestamp: seconds << 32 | the fraction of a second in 1/2^32 units."""
    sec, rest = divmod(ns, 1_000_000_000)
    frac = (rest * (1 << 32) + 500_000_000) // 1_000_000_000
    return ((sec << 32) | frac).to_bytes(8, "little")


def erf_record(
    ts_ns: int,
    data: bytes,
    *,
    kind: int = ETH,
    flags: int = 0,
    ext: tuple[int, ...] = (),
    wlen: int | None = None,
    lctr: int = 0,
) -> bytes:
    """One record: header, extension headers (each a type; the last one's 0x80 clear),
    the Ethernet types' 2-byte subheader, the data, zero padding to 8 bytes."""
    exts = b"".join(
        bytes([t | (0x80 if k < len(ext) - 1 else 0)]) + bytes(7) for k, t in enumerate(ext)
    )
    sub = bytes(2) if kind in (ETH, COLOR_ETH) else b""
    body = exts + sub + data
    body += bytes(-(16 + len(body)) % 8)
    return b"".join(
        [
            erf_ts(ts_ns),
            bytes([kind | (0x80 if ext else 0), flags]),
            (16 + len(body)).to_bytes(2, "big"),
            lctr.to_bytes(2, "big"),
            (len(data) if wlen is None else wlen).to_bytes(2, "big"),
            body,
        ]
    )


def frames() -> list[tuple[int, bytes]]:
    """Incident 1's poison fragments among ordinary traffic, and a slice of the bench mix."""
    return [*incidents.incident1_poison_fragment(normal=150), *mixed_capture(500, seed=4)]


def as_erf(packets: list[tuple[int, bytes]]) -> bytes:
    """The frames as ERF Ethernet records the way DAG cards vary them: on interface 0 or 1
    (port_of), every fifth a COLOR_ETH record, every seventh with two extension headers
    (Host ID, then Flow ID), a PAD record after every eleventh."""
    out = []
    for k, (ts, data) in enumerate(packets):
        kind = COLOR_ETH if k % 5 == 4 else ETH
        ext = (17, 16) if k % 7 == 6 else ()
        out.append(erf_record(ts, data, kind=kind, flags=port_of(data, k), ext=ext))
        if k % 11 == 10:
            out.append(erf_record(0, bytes(24), kind=PAD))
    return b"".join(out)


def port_of(frame: bytes, k: int) -> int:
    """The DAG port a frame is seen on: by its IPv4 address pair (802.1Q tags skipped), as a
    tap gives each direction of a link a port, so every fragment of a datagram is on one;
    anything else every third frame. (The fragment keys tell ports apart.)"""
    at = 14
    while frame[at - 2 : at] == b"\x81\x00":
        at += 4
    if frame[at - 2 : at] == b"\x08\x00":
        return zlib.crc32(frame[at + 12 : at + 20]) & 1
    return 1 if k % 3 == 2 else 0


def test_erf_scans_as_the_same_frames_in_a_pcap_file(tmp_path: Path) -> None:
    packets = frames()
    pcap, erf = tmp_path / "frames.pcap", tmp_path / "frames.erf"
    with open(pcap, "wb") as fh:
        write_pcap(fh, packets, nanosecond=True)
    erf.write_bytes(as_erf(packets))
    reader = open_capture(str(erf))
    ports = {int(i) for b in reader.batches() if b.iface is not None for i in b.iface}
    reader.source.close()
    assert isinstance(reader, ErfReader) and ports == {0, 1}  # both ports, read as such
    want = document(pcap)
    assert f'"packets": {len(packets)},' in want and "ipv4.fragment.zero_length" in want
    assert document(erf) == want


def test_erf_frames_are_tsharks_frames(tmp_path: Path) -> None:
    tshark = require("tshark", "tshark")
    packets = frames()
    erf = tmp_path / "frames.erf"
    erf.write_bytes(as_erf(packets))
    fields = ("frame.len", "frame.cap_len", "frame.time_epoch", "eth.src", "ip.id")
    rows = tshark_frames(tshark, erf, *fields)
    assert len(rows) == len(packets)
    mine = []
    reader = open_capture(str(erf))
    for b in reader.batches():
        for i in range(len(b)):
            data = b.packet(i)
            sec, ns = divmod(int(b.ts_ns[i]), 1_000_000_000)
            mac = ":".join(f"{x:02x}" for x in data[6:12])
            mine.append([str(int(b.wirelen[i])), str(int(b.caplen[i])), f"{sec}.{ns:09d}", mac])
    assert [r[:4] for r in rows] == mine
    # The timestamps round-trip to the nanosecond.
    assert [m[2] for m in mine] == [f"{ts // 10**9}.{ts % 10**9:09d}" for ts, _ in packets]


def test_erf_record_types_carry_what_tshark_decodes(tmp_path: Path) -> None:
    """Bare IPv4 and IPv6, PPP and Cisco HDLC on POS links (told apart by their address
    byte), a provenance (META) record and a loss counter: frame for frame as tshark."""
    tshark = require("tshark", "tshark")
    v6 = b"".join(  # IPv6 ::2 -> ::1, a UDP header (4000 -> 53) and no payload
        [
            bytes.fromhex("60000000 0008 1140"),
            bytes(15) + b"\x02",
            bytes(15) + b"\x01",
            bytes.fromhex("0fa0 0035 0008 0000"),
        ]
    )
    t0 = incidents.T0
    records = [
        erf_record(t0, udp4("198.51.100.1"), kind=IPV4),
        erf_record(t0 + 1, v6, kind=IPV6),
        erf_record(t0 + 2, b"\xff\x03\x00\x21" + udp4("198.51.100.3"), kind=HDLC_POS),
        erf_record(t0 + 3, b"\x0f\x00\x08\x00" + udp4("198.51.100.4"), kind=HDLC_POS),
        erf_record(t0 + 4, bytes(24), kind=META),
        erf_record(t0 + 5, udp4("198.51.100.6"), kind=IPV4, lctr=3),
    ]
    erf = tmp_path / "types.erf"
    erf.write_bytes(b"".join(records))
    rows = tshark_frames(tshark, erf, "frame.protocols", "ip.src", "ipv6.src")
    carried = [":".join(r[0].split(":")[:2]) for r in rows]
    assert carried == ["erf:ip", "erf:ipv6", "erf:ppp", "erf:chdlc", "erf", "erf:ip"]
    doc = scan_document(scan([str(erf)]))
    assert doc["inputs"][0]["linktypes"] == {"228": 2, "229": 1, "50": 1, "104": 1, "197": 1}
    assert doc["summary"]["l3"] == {"ipv4": 4, "ipv6": 1, "other": 1}  # other: the META
    srcs = [r[1] or r[2] for r in rows]
    assert srcs == ["198.51.100.1", "::2", "198.51.100.3", "198.51.100.4", "", "198.51.100.6"]
    # The provenance record is capture metadata, counted, not a link type not decoded.
    assert doc["summary"]["link"]["erf_meta"] == 1
    assert "capture.unsupported_linktype" not in {f["id"] for f in doc["findings"]}


def test_scapys_erf_writer_is_read_as_its_pcap(tmp_path: Path) -> None:
    """scapy writes ERF independently of this file's writer."""
    pcap = tmp_path / "frames.pcap"
    with open(pcap, "wb") as fh:
        write_pcap(fh, frames())  # microseconds: scapy's float time keeps them exactly
    erf = tmp_path / "scapy.erf"
    writer = ERFEthernetWriter(str(erf))
    writer.write(rdpcap(str(pcap)))
    writer.close()
    assert document(erf) == document(pcap)


def test_a_cut_erf_file_reads_up_to_the_cut_as_tshark_does(tmp_path: Path) -> None:
    tshark = require("tshark", "tshark")
    data = as_erf(frames())
    cut = tmp_path / "cut.erf"
    cut.write_bytes(data[: len(data) * 3 // 5])
    rows = tshark_frames(tshark, cut, "frame.number")
    doc = scan_document(scan([str(cut)]))
    assert doc["inputs"][0]["packets"] == len(rows) > 100
    assert "capture.truncated_file" in {f["id"] for f in doc["findings"]}


def broken(rlen: int, *, ext_runs_on: bool = False) -> bytes:
    """A bare IPv4 record whose length field says `rlen`, or (ext_runs_on) a 48-byte one
    whose extension headers each say another follows, on past the record's end."""
    if ext_runs_on:
        head = [erf_ts(incidents.T0 + 9), bytes([IPV4 | 0x80, 0]), (48).to_bytes(2, "big")]
        return b"".join([*head, bytes(2), (24).to_bytes(2, "big"), b"\x80" * 32])
    bad = bytearray(erf_record(incidents.T0 + 9, udp4("198.51.100.9"), kind=IPV4))
    bad[10:12] = rlen.to_bytes(2, "big")
    return bytes(bad)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (broken(12), "has a record length of 12, below its 16-byte header"),
        (broken(16), "has no bytes after its 16-byte header"),
        (broken(0, ext_runs_on=True), "has extension headers or a subheader longer than its"),
    ],
    ids=["below-header", "empty", "extension-headers"],
)
def test_a_corrupt_record_stops_the_read_and_is_named(
    record: bytes, why: str, tmp_path: Path
) -> None:
    """Past the 20 records Wireshark's test looks at (among them a bad record refuses the
    file: test_what_wireshark_takes_for_no_erf_is_no_capture), tshark reads up to a
    corrupt record and stops there with an error; netsleuth names it."""
    tshark = require("tshark", "tshark")
    good = ip_records(20)
    path = tmp_path / "corrupt.erf"
    path.write_bytes(b"".join([*good, record, *good]))
    code, numbers = tshark_erf(tshark, path)
    assert code == 2 and numbers == [str(k) for k in range(1, 21)]
    doc = scan_document(scan([str(path)]))
    assert doc["inputs"][0]["packets"] == 20
    [issue] = [f for f in doc["findings"] if f["id"] == "capture.corrupt_record"]
    assert issue["packets"] == [21]
    assert f"record 21 {why}" in issue["summary"]


def test_gzip_erf_on_stdin(tmp_path: Path) -> None:
    packets = frames()
    done = invoke("scan", "--format", "json", "-", input=gzip.compress(as_erf(packets)))
    [part] = done.json()["inputs"]
    assert (part["format"], part["compressed"], part["packets"]) == ("erf", True, len(packets))


def test_a_record_not_decoded_is_exported_whole_as_erf(tmp_path: Path) -> None:
    """An ATM cell record, flagged as a link type not decoded, goes into the evidence
    file as LINKTYPE_ERF with its header, and tshark reads it back as the same record."""
    tshark = require("tshark", "tshark")
    cell = erf_record(incidents.T0 + 5, bytes.fromhex("00100020") + bytes(48), kind=ATM)
    ip = [erf_record(incidents.T0 + k, udp4("198.51.100.1"), kind=IPV4) for k in range(3)]
    src, out = tmp_path / "atm.erf", tmp_path / "evidence.pcapng"
    src.write_bytes(b"".join([*ip, cell]))
    invoke("scan", "--export", str(out), str(src))
    fields = ("frame.protocols", "erf.types.type", "frame.len", "frame.time_epoch")
    assert tshark_frames(tshark, out, *fields) == tshark_frames(tshark, src, *fields)[3:]


def tshark_erf(tshark: str, path: Path) -> tuple[int, list[str]]:
    """tshark's exit code and frame numbers, the file read as ERF only (-X read_format):
    no other format's test may claim what wiretap/erf.c refuses."""
    cmd = [tshark, "-n", "-X", "read_format:Endace ERF capture", "-r", str(path)]
    done = subprocess.run(
        [*cmd, "-T", "fields", "-e", "frame.number"], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout.split()


def ip_records(n: int, *, at: int = 0) -> list[bytes]:
    return [erf_record(incidents.T0 + k, udp4("198.51.100.1"), kind=IPV4) for k in range(at, n)]


def wireshark_refuses_at_5(record: bytes) -> bytes:
    return b"".join([*ip_records(4), record, *ip_records(8, at=5)])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"hello world\n" * 40, "it starts with text 'hello world"),
        # The type byte (8) is 8, the length 0x0a0b: its second record is cut.
        (bytes(range(256)) * 8, "it starts with bytes 00 01 02 03"),
        (ip_records(1)[0][:20], "it starts with bytes"),  # one record, cut
        (b"".join(ip_records(2)) + ip_records(3)[2][:30], "it starts with bytes"),
        (wireshark_refuses_at_5(broken(12)), "record 5 has a record length of 12, below"),
        (
            wireshark_refuses_at_5(erf_record(incidents.T0, udp4("198.51.100.1"), kind=0)),
            "record 5 has type 0 (the legacy type)",
        ),
        (
            wireshark_refuses_at_5(
                erf_record(incidents.T0 - 3 * 10**9, udp4("198.51.100.1"), kind=IPV4)
            ),
            "record 5 has a timestamp more than a second before the previous record's",
        ),
        (
            wireshark_refuses_at_5(broken(0, ext_runs_on=True)),
            "record 5 has extension headers that its length or the file does not hold",
        ),
    ],
    ids=[
        "text",
        "counting",
        "one-cut-record",
        "third-cut",
        "short-5",
        "type0-5",
        "back-5",
        "ext-5",
    ],
)
def test_what_wireshark_takes_for_no_erf_is_no_capture(
    data: bytes, why: str, tmp_path: Path
) -> None:
    """wiretap/erf.c's erf_open looks at a file's first 20 records and takes it for no ERF
    file when one of them is not an ERF record, or when the file ends inside one of the
    first 3. A bad record 5 was read here as the end of a file of 4 records; now the file
    is refused in one line naming it, as tshark refuses it (forced to read ERF)."""
    tshark = require("tshark", "tshark")
    path = tmp_path / "not.erf"
    path.write_bytes(data)
    code, numbers = tshark_erf(tshark, path)
    assert code != 0 and numbers == []
    done = invoke("scan", str(path), code=2)
    [line] = done.err_lines()
    assert f"{path}: not a capture file: " in line and why in line, line
    if "record 5" in why:
        assert "records 1-4 read as ERF, but record 5" in line


def test_record_types_wireshark_takes_are_frames(tmp_path: Path) -> None:
    """Wireshark 4.0's test refuses type 0 only: types past the ones erf_record.h names
    (26, 30-47, and on to 127) are ERF records, which tshark shows as frames whose only
    protocol is erf. They were 'not a capture file' among a file's first three records;
    each is now a frame, numbered as tshark numbers it, a record not decoded (kept whole
    as LINKTYPE_ERF, capture.unsupported_linktype), the frames around it read."""
    tshark = require("tshark", "tshark")
    odd = {1: 26, 2: 30, 4: 47, 6: 49, 9: 127}
    records = [
        erf_record(incidents.T0 + k, udp4("198.51.100.1"), kind=odd.get(k, IPV4))
        for k in range(1, 11)
    ]
    path = tmp_path / "types.erf"
    path.write_bytes(b"".join(records))
    rows = tshark_frames(tshark, path, "frame.number", "erf.types.type", "frame.protocols")
    assert [(int(r[1]), r[2]) for r in rows if int(r[1]) != IPV4] == [
        (kind, "erf:data") for kind in odd.values()
    ]
    doc = scan_document(scan([str(path)]))
    assert doc["inputs"][0]["packets"] == len(rows) == 10
    [issue] = [f for f in doc["findings"] if f["id"] == "capture.unsupported_linktype"]
    assert issue["packets"] == [int(r[0]) for r in rows if r[1] != str(IPV4)] == [1, 2, 4, 6, 9]
    assert doc["summary"]["l3"]["ipv4"] == 5


def test_pad_records_are_among_the_records_wireshark_looks_at(tmp_path: Path) -> None:
    """erf_open counts PAD records among the 20 it looks at (their timestamps unchecked):
    20 PAD records, then a record of type 0 and IPv4 records, are an ERF file, the type 0
    record a frame; and a file of PAD records only is an ERF file of no frames (tshark:
    no frame, exit 0). Both were 'not a capture file' (PAD records were no evidence)."""
    tshark = require("tshark", "tshark")
    pad = erf_record(0, bytes(24), kind=PAD)
    legacy = erf_record(incidents.T0, udp4("198.51.100.1"), kind=0)
    padded, only_pad = tmp_path / "padded.erf", tmp_path / "pad.erf"
    padded.write_bytes(b"".join([pad * 20, legacy, *ip_records(4, at=1)]))
    only_pad.write_bytes(pad * 5)
    assert tshark_erf(tshark, padded) == (0, ["1", "2", "3", "4"])
    assert tshark_erf(tshark, only_pad) == (0, [])
    doc = invoke("scan", "--format", "json", str(padded)).json()
    assert doc["inputs"][0]["packets"] == 4
    assert [f["packets"] for f in doc["findings"]] == [[1]]  # unsupported_linktype
    doc = invoke("scan", "--format", "json", str(only_pad)).json()
    assert (doc["inputs"][0]["format"], doc["inputs"][0]["packets"]) == ("erf", 0)


def test_the_loss_counter_is_a_finding_and_a_colour_is_not(tmp_path: Path) -> None:
    """ETH records count the records the card lost before them (erf.lctr, as tshark shows
    it); in a COLOR_ETH record the same field is a colour, no loss."""
    tshark = require("tshark", "tshark")
    packets = frames()[:40]
    records = [
        erf_record(ts, data, kind=COLOR_ETH if k == 7 else ETH, lctr={7: 9, 12: 5, 30: 2}.get(k, 0))
        for k, (ts, data) in enumerate(packets)
    ]
    path = tmp_path / "lossy.erf"
    path.write_bytes(b"".join(records))
    rows = tshark_frames(tshark, path, "erf.lctr", "erf.color")
    assert [k + 1 for k, (lctr, _) in enumerate(rows) if int(lctr or 0)] == [13, 31]
    assert [k + 1 for k, (_, colour) in enumerate(rows) if colour] == [8]
    doc = scan_document(scan([str(path)]))
    [loss] = [f for f in doc["findings"] if f["id"] == "capture.capture_loss"]
    assert (loss["count"], loss["evidence"]["lost"], loss["packets"]) == (2, 5 + 2, [13])
    assert loss["summary"] == "the capture card lost 7 record(s) before 2 record(s) it marked"
    assert loss["evidence"]["byte_offset"] == sum(len(r) for r in records[:12])


def test_timestamps_may_go_back_as_far_as_wireshark_allows(tmp_path: Path) -> None:
    """Records of several interfaces are not in strict time order: wiretap/erf.c refuses a
    file only when a timestamp goes back by more than 1 in its seconds field (the whole
    64-bit difference shifted by 32), so 1.9 s back is ERF and 2.5 s back is not."""
    t0 = incidents.T0
    for back, erf in ((1_900_000_000, True), (2_500_000_000, False)):
        stamps = [t0 + 5 * 10**9, t0 + 5 * 10**9 - back, t0 + 6 * 10**9, t0 + 7 * 10**9]
        path = tmp_path / f"back-{back}.erf"
        path.write_bytes(b"".join(erf_record(ts, udp4("198.51.100.1"), kind=IPV4) for ts in stamps))
        invoke("scan", str(path), code=0 if erf else 2)


def ether_ipv4(packet: bytes) -> bytes:
    return ether(packet, 0x0800)


def test_a_zero_ipv4_checksum_on_the_wire_is_bad_not_offload(tmp_path: Path) -> None:
    """A DAG card captures the wire, past the sender's NIC: a zero IPv4 header checksum
    there is what was sent, and so is a total length of 0 (the segmentation offload a
    host's own capture shows; Linux BIG TCP's length, with a right checksum, is inside a
    host too). The same frames in a pcap file, whose capture point nobody says, are the
    offload finding and BIG TCP (checks/ipv4_checksum.py, decode/ipv4.py). Exported as
    evidence, the ERF frames keep their verdict."""
    tshark = require("tshark", "tshark")
    body = udp("198.51.100.7", "192.0.2.99", 4000, 53, b"x" * 12)
    frames = [
        ether_ipv4(ipv4("198.51.100.7", "192.0.2.99", body, 17, checksum=0)),
        ether_ipv4(ipv4("198.51.100.8", "192.0.2.99", body, 17, checksum=0, total_length=0)),
        ether_ipv4(ipv4("198.51.100.9", "192.0.2.99", body, 17)),
        ether_ipv4(ipv4("198.51.100.10", "192.0.2.99", body, 17, total_length=0)),
    ]
    t0 = incidents.T0
    erf = tmp_path / "zero.erf"
    erf.write_bytes(b"".join(erf_record(t0 + k, f) for k, f in enumerate(frames)))
    pcap = tmp_path / "zero.pcap"
    with open(pcap, "wb") as fh:
        write_pcap(fh, [(t0 + k, f) for k, f in enumerate(frames)])
    # tshark reads the two zero checksums where they were written, in both files.
    for path in (erf, pcap):
        rows = tshark_frames(tshark, path, "ip.checksum")
        assert [r[0] for r in rows[:2]] == ["0x0000", "0x0000"]
        assert [r[0] != "0x0000" for r in rows[2:]] == [True, True]
    # (tshark shows a total length of 0 as the frame's, presuming TSO: read here.)
    assert [f[16:18] for f in frames] == [b"\x00\x28", b"\x00\x00", b"\x00\x28", b"\x00\x00"]

    def verdicts(path: Path) -> dict[str, list[int]]:
        doc = scan_document(scan([str(path)]))
        return {f["id"]: f["packets"] for f in doc["findings"] if f["id"].startswith("ipv4.")}

    assert verdicts(erf) == {"ipv4.bad_checksum": [1, 2], "ipv4.bad_total_length": [2, 4]}
    assert verdicts(pcap) == {"ipv4.checksum_offload": [1, 2]}
    # Exported, each frame says it was captured on the wire and is marked inbound (what the
    # card did): pcapng holds no more of a capture point, so a rescan judges frame 1 bad
    # again, but cannot know that the lengths of 0 never left a host.
    evidence = tmp_path / "evidence.pcapng"
    invoke("scan", "--export", str(evidence), str(erf), code=0)
    rows = tshark_frames(tshark, evidence, "frame.comment", "frame.packet_flags_direction")
    assert len(rows) == 4  # every frame: each is also a runt (l2.runt)
    assert all("captured on the wire: ERF" in r[0] and int(r[1], 0) == 1 for r in rows), rows
    assert verdicts(evidence)["ipv4.bad_checksum"] == [1]


# ----- the FCS a DAG card keeps at the end of each Ethernet record ---------------------------


def wire_files(folder: Path) -> tuple[list[bytes], Path, Path]:
    """wire_frames(), as ERF records ending in their FCS and as a pcap file without FCSs."""
    frames = wire_frames()
    t0 = incidents.T0
    erf, pcap = folder / "wire.erf", folder / "wire.pcap"
    erf.write_bytes(b"".join(erf_record(t0 + k, with_fcs(f)) for k, f in enumerate(frames)))
    with open(pcap, "wb") as fh:
        write_pcap(fh, [(t0 + k, f) for k, f in enumerate(frames)])
    return frames, erf, pcap


def test_the_fcs_ending_an_erf_ethernet_record_is_not_frame_bytes(tmp_path: Path) -> None:
    """tshark reads the last 4 bytes of these records as the FCS (eth.fcs, frame.len 64
    for a 60-byte frame), and netsleuth scans them as the same frames in a pcap file
    without FCSs: no runt, the zero padding of the minimum-size frames is padding, the
    Etherleak frame's non-zero padding is found (frame 3: its FCS is not read as padding
    past a 64-byte frame). Its byte counts are the records' wire lengths, FCSs included,
    as capinfos and the sum of tshark's frame.len give them."""
    tshark = require("tshark", "tshark")
    frames, erf, pcap = wire_files(tmp_path)
    rows = tshark_frames(tshark, erf, "frame.len", "eth.fcs", "eth.padding", "llc.dsap")
    assert [int(r[0]) for r in rows] == [len(f) + 4 for f in frames]
    # The untagged frames' FCS where tshark's Ethernet dissector looks (a tagged frame's
    # is its 802.1Q dissector's "Trailer" in tshark 4.0): each the frame's CRC.
    fcs = [f"0x{int.from_bytes(with_fcs(f)[-4:], 'big'):08x}" for f in frames]
    assert [r[1] for k, r in enumerate(rows) if k != 3] == [c for k, c in enumerate(fcs) if k != 3]
    assert [r[2] for r in rows[:2]] == ["00" * 6, "00" * 7] and rows[1][3] == "0x42"
    doc = document(erf, wire=sum(int(r[0]) for r in rows))
    assert doc == without_bytes(pcap)
    ids = {f["id"]: f["packets"] for f in json.loads(doc)["findings"]}
    assert ids == {"l2.ieee8023_llc": [2], "l2.padding_nonzero": [3]}


def test_a_record_snapped_before_or_inside_its_fcs(tmp_path: Path) -> None:
    """ERF records cut by the card's snap length (wire length past the record's bytes):
    one cut inside its frame is a truncated packet; one cut right after its frame, or 2
    bytes into its FCS, holds the whole frame and is not. The same frames in a pcap file,
    the first cut at the same byte, scan the same."""
    tshark = require("tshark", "tshark")
    big = ether(udp4("198.51.100.2", b"y" * 60), 0x0800)  # 102 bytes: 18 + 102 fills 8s
    small = udp_frame("198.51.100.3")
    cut = [(big, 38), (big, 102), (small, 62)]  # each record's bytes: whole 8-byte units
    t0 = incidents.T0
    erf, pcap = tmp_path / "snapped.erf", tmp_path / "snapped.pcap"
    records = [erf_record(t0 + k, with_fcs(f)[:n], wlen=len(f) + 4) for k, (f, n) in enumerate(cut)]
    erf.write_bytes(b"".join(records))
    sec, ns = divmod(t0, 10**9)
    snapped = [
        (sec, ns, big[:38], len(big)),
        (sec, ns + 1, big, len(big)),
        (sec, ns + 2, small, 60),
    ]
    pcap.write_bytes(pcap_bytes(snapped, nano=True))
    rows = tshark_frames(tshark, erf, "frame.len", "frame.cap_len")
    assert rows == [["106", "38"], ["106", "102"], ["64", "62"]]
    doc = document(erf, wire=106 + 106 + 64)
    assert doc == without_bytes(pcap)
    ids = {f["id"]: f["packets"] for f in json.loads(doc)["findings"]}
    assert ids == {"capture.truncated_packet": [1]}


def test_an_exported_erf_frame_leaves_its_fcs_out(tmp_path: Path) -> None:
    """The evidence holds each frame as it was judged, without its FCS (so its interface
    needs no if_fcslen): tshark reads the Etherleak frame back as 60 bytes whose last 6
    are its padding (a trailer to tshark: not zeros), and a scan of the evidence finds it again."""
    tshark = require("tshark", "tshark")
    _, erf, _ = wire_files(tmp_path)
    out = tmp_path / "evidence.pcapng"
    invoke("scan", "--only", "l2.padding_nonzero", "--export", str(out), str(erf))
    fields = ("frame.len", "frame.cap_len", "eth.fcs", "eth.trailer", "frame.comment")
    rows = tshark_frames(tshark, out, *fields)
    assert [r[:4] for r in rows] == [["60", "60", "", "ab" * 6]], rows
    assert "frame 3: l2.padding_nonzero [outer]" in rows[0][4] and "FCS left out" in rows[0][4]
    doc = scan_document(scan([str(out)]))
    assert [f["packets"] for f in doc["findings"] if f["id"] == "l2.padding_nonzero"] == [[1]]


def test_steer_counts_erf_frames_without_their_fcs(tmp_path: Path) -> None:
    """Queue and flow byte loads are the frames' a NIC hands on (it strips the FCS): the
    same from the ERF records as from a pcap file of the frames. The input's bytes are
    what each file records, the ERF records' FCSs included."""
    frames, erf, pcap = wire_files(tmp_path)

    def loads(path: Path) -> tuple[object, ...]:
        doc = invoke("steer", "--format", "json", str(path)).json()
        return (doc["inputs"][0]["bytes"], doc["rss"], doc["flows"])

    (erf_bytes, *erf_loads), (pcap_bytes, *pcap_loads) = loads(erf), loads(pcap)
    assert erf_loads == pcap_loads
    assert pcap_bytes == sum(len(f) for f in frames)
    assert erf_bytes == pcap_bytes + 4 * len(frames)


def test_a_dag_capture_starting_with_a_provenance_record_has_no_finding(tmp_path: Path) -> None:
    """DAG software 5.x and later starts every capture file with a provenance (META, type
    27) record: tshark shows it as a frame whose only protocol is erf. It is counted
    (link erf_meta), not named a link type netsleuth does not decode."""
    tshark = require("tshark", "tshark")
    # One section of tags (type, length, value): a comment (tag 1), "dag".
    meta = erf_record(incidents.T0, bytes.fromhex("ff0000080001000364616700"), kind=META)
    frames = [udp_frame(f"198.51.100.{k}") for k in range(1, 4)]
    path = tmp_path / "dag.erf"
    body = [erf_record(incidents.T0 + k, with_fcs(f)) for k, f in enumerate(frames, 1)]
    path.write_bytes(b"".join([meta, *body]))
    rows = tshark_frames(tshark, path, "frame.protocols")
    assert [r[0].split(":")[:2] for r in rows] == [["erf"], *[["erf", "eth"]] * 3]
    doc = scan_document(scan([str(path)]))
    assert doc["findings"] == []
    assert doc["summary"]["link"] == {"erf_meta": 1, "ethernet": 3}
    assert doc["inputs"][0]["packets"] == 4


def test_an_ip_length_shorter_than_its_header_gives_no_fcs(tmp_path: Path) -> None:
    """An IPv4 total length of 0 (a wire capture: bad, not TSO) or below its header's says
    nothing of where the payload ends: tshark then takes no FCS (helper-53), and neither
    does netsleuth. The same frame with its real length 40 has one."""
    tshark = require("tshark", "tshark")
    body = udp("198.51.100.9", "192.0.2.99", 5, 53, b"q" * 12)
    frames = [
        ether(ipv4("198.51.100.9", "192.0.2.99", body, 17, total_length=n), 0x0800)
        for n in (0, 12, 40)
    ]
    path = tmp_path / "lengths.erf"
    path.write_bytes(
        b"".join(erf_record(incidents.T0 + k, with_fcs(pad(f))) for k, f in enumerate(frames))
    )
    rows = tshark_frames(tshark, path, "eth.fcs")
    assert [bool(r[0]) for r in rows] == [False, False, True]
    reader = open_capture(str(path))
    t = decode(next(iter(reader.batches())))
    reader.source.close()
    assert t.fcs.tolist() == [False, False, True]
    assert t.frame_len.tolist() == [64, 64, 60]


def test_an_ipv6_payload_length_of_0_on_the_wire_is_an_empty_payload(tmp_path: Path) -> None:
    """On the wire no IPv6 payload length of 0 is a jumbogram or BIG TCP: the payload is
    empty, as a receiver (ip6_rcv_core) and tshark read it, so what follows the header is
    trailer and FCS: tshark finds the FCS on each of these frames, and so does netsleuth
    (it took the frame whole before). The UDP header past the empty payload is cut short,
    and so is the hop-by-hop header that would hold a Jumbo Payload option."""
    tshark = require("tshark", "tshark")
    src, dst = "2001:db8::1", "2001:db8::2"
    datagram = udp(src, dst, 40000, 40001, b"q" * 12)
    jumbo = bytes([17, 0, 0xC2, 4]) + (8 + len(datagram)).to_bytes(4, "big") + datagram
    frames = [
        ether(ipv6(src, dst, datagram, 17), 0x86DD),
        ether(ipv6(src, dst, datagram, 17, payload_length=0), 0x86DD),
        pad(ether(ipv6(src, dst, b"", 59, payload_length=0), 0x86DD)),
        ether(ipv6(src, dst, jumbo, 0, payload_length=0), 0x86DD),
    ]
    path = tmp_path / "plen0.erf"
    path.write_bytes(
        b"".join(erf_record(incidents.T0 + k, with_fcs(f)) for k, f in enumerate(frames))
    )
    rows = tshark_frames(tshark, path, "frame.len", "eth.fcs", "ipv6.plen")
    assert [(int(r[0]), bool(r[1])) for r in rows] == [(len(f) + 4, True) for f in frames]
    assert [r[2] for r in rows] == ["20", "0", "0", "0"]
    reader = open_capture(str(path))
    t = decode(next(iter(reader.batches())))
    reader.source.close()
    assert t.fcs.all() and t.frame_len.tolist() == [len(f) for f in frames]
    doc = scan_document(scan([str(path)]))
    assert {f["id"]: f["packets"] for f in doc["findings"]} == {
        "udp.truncated": [2],
        "ipv6.ext_truncated": [4],
    }


def test_pppoe_session_frames_end_in_their_fcs_where_tshark_shows_none(tmp_path: Path) -> None:
    """A difference from tshark 4.0, kept (PacketTable.settle_fcs): it shows neither an FCS
    nor a trailer on a PPPoE session frame (packet-pppoe.c leaves the Ethernet payload
    whole, so the heuristic never runs), but a DAG card kept the FCS there as on any frame:
    netsleuth takes it, after the PPPoE length as after any length, and scans the frames
    as a pcap file without FCSs holds them (the Etherleak padding of the minimum-size one
    found, not read past a 64-byte frame)."""
    tshark = require("tshark", "tshark")
    lcp = bytes.fromhex("0101000a0506deadbeef")  # Configure-Request, a magic number
    frames = [
        pad(ether(pppoe_session(udp4("198.51.100.1", b""), 0x0021), 0x8864), fill=0xAB),
        pad(ether(pppoe_session(lcp, 0xC021), 0x8864)),
        ether(pppoe_session(udp4("198.51.100.2", b"p" * 300), 0x0021), 0x8864),
    ]
    erf, pcap = tmp_path / "pppoe.erf", tmp_path / "pppoe.pcap"
    erf.write_bytes(
        b"".join(erf_record(incidents.T0 + k, with_fcs(f)) for k, f in enumerate(frames))
    )
    with open(pcap, "wb") as fh:
        write_pcap(fh, [(incidents.T0 + k, f) for k, f in enumerate(frames)])
    rows = tshark_frames(tshark, erf, "frame.len", "eth.fcs", "eth.trailer", "eth.padding")
    assert rows == [[str(len(f) + 4), "", "", ""] for f in frames]
    doc = document(erf, wire=sum(len(f) + 4 for f in frames))
    assert doc == without_bytes(pcap)
    assert {f["id"]: f["packets"] for f in json.loads(doc)["findings"]} == {
        "l2.padding_nonzero": [1]
    }
