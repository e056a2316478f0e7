"""snoop files (RFC 1761) and Shomiti/Finisar Surveyor's, read as Wireshark reads them
(wiretap/snoop.c): files built here byte by byte, then checked against tshark 4.0 frame by
frame (which versions and network types it reads, which it refuses, where it stops)."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from netsleuth.capture import open_capture
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.craft.l2 import ether
from netsleuth.craft.link import ipnet, null
from netsleuth.decode import decode
from netsleuth.report.jsonout import scan_document
from netsleuth.scan import scan
from tests.capfiles import pcap_bytes, with_fcs
from tests.clirun import invoke, run
from tests.systools import require
from tests.wireframes import document, tshark_frames, udp4, wire_frames, without_bytes

SEC = incidents.T0 // 10**9


def record(data: bytes, k: int = 0, *, orig: int | None = None, pad: int | None = None) -> bytes:
    """One record: header (original and included lengths, record length, drops, seconds,
    microseconds), the data, and `pad` bytes of padding (None: to 4 bytes, as snoop does)."""
    pad = -len(data) % 4 if pad is None else pad
    head = struct.pack(
        ">IIIIII", len(data) if orig is None else orig, len(data), 24 + len(data) + pad, 0, SEC, k
    )
    return head + data + bytes(pad)


def snoop_file(records: list[bytes], *, version: int = 2, network: int = 4) -> bytes:
    return b"snoop\0\0\0" + struct.pack(">II", version, network) + b"".join(records)


def udp_frames(n: int) -> list[bytes]:
    return [ether(udp4(f"198.51.100.{k}"), 0x0800) for k in range(1, n + 1)]


def packets(path: Path) -> int:
    return int(invoke("scan", "--format", "json", str(path)).json()["inputs"][0]["packets"])


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4, 5, 6])
def test_the_versions_wireshark_reads(version: int, tmp_path: Path) -> None:
    """snoop.c reads version 2 (Sun's snoop) and 3-5 (Shomiti Surveyor 3.0 and later) and
    refuses the rest: version 1 was read here and 3-5 refused, the reverse."""
    tshark = require("tshark", "tshark")
    path = tmp_path / "v.snoop"
    path.write_bytes(
        snoop_file([record(f, k) for k, f in enumerate(udp_frames(3))], version=version)
    )
    rows = tshark_frames(tshark, path, "frame.number")
    if version in (2, 3, 4, 5):
        assert len(rows) == packets(path) == 3
        return
    assert rows == []
    done = invoke("scan", str(path), code=2)
    assert done.err_lines() == [
        f"netsleuth: {path}: snoop version {version}: Wireshark reads 2 (Sun's snoop) and 3-5 "
        "(Shomiti Surveyor's) only"
    ]


def loopback(k: int) -> bytes:
    return null(udp4(f"198.51.100.{k}"), 2)


# Network type -> (the link type it is read as, a frame of it, whether IPv4 is decoded).
NETWORKS = {
    0: ("1", ether(udp4("198.51.100.1"), 0x0800), True),
    2: ("6", ether(udp4("198.51.100.1"), 0x0800), False),
    4: ("1", ether(udp4("198.51.100.1"), 0x0800), True),
    8: ("10", ether(udp4("198.51.100.1"), 0x0800), False),
    9: ("0", loopback(1), True),
    14: ("0", loopback(1), True),
    16: ("122", ether(udp4("198.51.100.1"), 0x0800), False),
    18: ("123", bytes.fromhex("82000064") + udp4("198.51.100.1"), False),
    26: ("-1", bytes.fromhex("08000000") + udp4("198.51.100.1"), False),
    0x80000005: ("226", ipnet(udp4("198.51.100.1"), 2), True),
}


@pytest.mark.parametrize("network", [*NETWORKS, 1, 10, 27, 0x80000000, 0x80000004])
def test_the_network_types_wireshark_reads(network: int, tmp_path: Path) -> None:
    """snoop.c's table of network types: each it maps is read, as the pcap link type of
    its frames (BSD loopback for 'Other' and software loopback, LINKTYPE_SUNATM for
    atmsnoop's ATM, whose 4-byte header it keeps; ipnet among the private types; no link
    type names InfiniBand's 4-byte header), and any other refuses the file. They were read
    as an unknown link type whatever the number, loopback and ipnet among them."""
    tshark = require("tshark", "tshark")
    path = tmp_path / "n.snoop"
    name = "private network type" if network & 0x80000000 else "network type"
    linktype, frame, ipv4 = NETWORKS.get(network, ("", udp_frames(1)[0], False))
    path.write_bytes(snoop_file([record(frame, 1), record(frame, 2)], network=network))
    rows = tshark_frames(tshark, path, "frame.number", "ip.src")
    if not linktype:
        assert rows == []
        done = invoke("scan", str(path), code=2)
        assert done.err_lines() == [
            f"netsleuth: {path}: snoop {name} {network}: a link Wireshark does not read either"
        ]
        return
    doc = scan_document(scan([str(path)]))
    assert doc["inputs"][0]["linktypes"] == {linktype: 2} and len(rows) == 2
    assert doc["summary"]["l3"].get("ipv4", 0) == (2 if ipv4 else 0)
    assert not ipv4 or [r[1] for r in rows] == ["198.51.100.1"] * 2


def shomiti_records(frames: list[bytes], first_pad: int) -> list[bytes]:
    """The frames as records, the first one with `first_pad` bytes of padding (a Shomiti
    trailer's 16 or more make a Shomiti file), the rest padded to 4 bytes."""
    return [record(f, k, pad=first_pad if k == 0 else None) for k, f in enumerate(frames)]


@pytest.mark.parametrize("network", [4, 10, 12, 19])
def test_a_shomiti_file_is_told_by_its_first_records_padding(network: int, tmp_path: Path) -> None:
    """Surveyor writes a 16-byte trailer into each record's padding, and snoop.c takes a
    file whose first record has that much padding for Shomiti's: its network types are
    Shomiti's (10, 12, 19: Fast, Gigabit and 10 Gigabit Ethernet) and every Ethernet frame
    ends in its FCS (tshark's eth.fcs, whatever the frame's size). Scanned as the same
    frames in a pcap file without FCSs; they were frames with 4 bytes of trailer (or, for
    the Shomiti numbers, no link decoded)."""
    tshark = require("tshark", "tshark")
    frames = wire_frames()
    path, pcap = tmp_path / "shomiti.cap", tmp_path / "frames.pcap"
    path.write_bytes(
        snoop_file(shomiti_records([with_fcs(f) for f in frames], 16), network=network)
    )
    with open(pcap, "wb") as fh:
        write_pcap(
            fh, [(incidents.T0 // 10**9 * 10**9 + k * 1000, f) for k, f in enumerate(frames)]
        )
    rows = tshark_frames(tshark, path, "frame.len", "eth.fcs")
    assert [int(r[0]) for r in rows] == [len(f) + 4 for f in frames]
    fcs = [f"0x{int.from_bytes(with_fcs(f)[-4:], 'big'):08x}" for f in frames]
    assert [r[1] for k, r in enumerate(rows) if k != 3] == [c for k, c in enumerate(fcs) if k != 3]
    assert document(path, wire=sum(int(r[0]) for r in rows)) == without_bytes(pcap)


def test_fifteen_bytes_of_padding_make_no_shomiti_file(tmp_path: Path) -> None:
    """A Sun snoop file's frames have no FCS: 15 bytes of padding in the first record are
    no Shomiti trailer, and tshark takes no frame's last 4 bytes for one."""
    tshark = require("tshark", "tshark")
    frames = [with_fcs(f) for f in wire_frames()]
    path = tmp_path / "sun.snoop"
    path.write_bytes(snoop_file(shomiti_records(frames, 15)))
    assert [r[0] for r in tshark_frames(tshark, path, "eth.fcs")] == [""] * len(frames)
    reader = open_capture(str(path))
    table = decode(next(iter(reader.batches())))
    reader.source.close()
    assert not table.fcs.any() and table.frame_len.tolist() == [len(f) for f in frames]


def surveyor_80211(k: int, extra: int) -> bytes:
    """A Surveyor 802.11 record's data: its header (4 bytes, the last the length of the rest:
    8 and `extra` more; undecrypt, rate, preamble, code, signal, quality, channel), then an
    802.11 data frame to the DS (LLC/SNAP, IPv4) and its FCS."""
    header = bytes([0, 0, 0, 8 + extra, 0, 0, 22, 0, 1, 50, 0, 6]) + bytes(extra)
    mac = bytes.fromhex("0801 0000 020000000002 020000000001 ffffffffffff 0000")
    body = mac + bytes.fromhex("aaaa03000000 0800") + udp4(f"198.51.100.{k}")
    return header + body + bytes(4)


def test_a_shomiti_wireless_file_is_read_as_80211(tmp_path: Path) -> None:
    """Shomiti's network type 18: each record's data starts with a Surveyor header whose
    fourth byte says how long it is, which Wireshark strips before the 802.11 frame. Read
    as LINKTYPE_IEEE802_11 frames whose IPv4 is decoded, as tshark's ip.src; a header
    length below 8 stops the read there, as in tshark. (Type 18 was unknown.)"""
    tshark = require("tshark", "tshark")
    path = tmp_path / "wireless.cap"
    data = [surveyor_80211(k, extra) for k, extra in ((1, 0), (2, 4), (3, 0))]
    path.write_bytes(snoop_file(shomiti_records(data, 16), network=18))
    rows = tshark_frames(tshark, path, "frame.len", "ip.src")
    doc = scan_document(scan([str(path)]))
    assert rows == [
        [str(len(d) - 12 - e), f"198.51.100.{k}"]
        for k, d, e in ((1, data[0], 0), (2, data[1], 4), (3, data[2], 0))
    ]
    assert doc["inputs"][0]["linktypes"] == {"105": 3} and doc["summary"]["l3"]["ipv4"] == 3
    assert doc["inputs"][0]["bytes"] == sum(int(r[0]) for r in rows)
    short = bytearray(data[1])
    short[3] = 4
    path.write_bytes(snoop_file(shomiti_records([data[0], bytes(short), data[2]], 16), network=18))
    assert len(tshark_frames(tshark, path, "frame.number")) == 1
    doc = scan_document(scan([str(path)]))
    [issue] = [f for f in doc["findings"] if f["id"] == "capture.corrupt_record"]
    assert doc["inputs"][0]["packets"] == 1 and issue["packets"] == [2]
    assert "record 2 has a Surveyor header length of 4, below the 8 it needs" in issue["summary"]


def test_an_original_length_past_262144_stops_a_snoop_read_not_a_pcap_read(
    tmp_path: Path,
) -> None:
    """snoop.c takes an original length past WTAP_MAX_PACKET_SIZE_STANDARD (262144) for
    corruption and stops there; libpcap.c reads any (tshark's frame.len 262145, capinfos
    counting it). The snoop record was read here; both now read as tshark reads them."""
    tshark = require("tshark", "tshark")
    f1, f2, f3 = udp_frames(3)
    snoop, pcap = tmp_path / "long.snoop", tmp_path / "long.pcap"
    for orig, frames in ((262144, 3), (262145, 1)):
        snoop.write_bytes(snoop_file([record(f1, 1), record(f2, 2, orig=orig), record(f3, 3)]))
        assert len(tshark_frames(tshark, snoop, "frame.number")) == frames
        doc = scan_document(scan([str(snoop)]))
        assert doc["inputs"][0]["packets"] == frames
    [issue] = [f for f in doc["findings"] if f["id"] == "capture.corrupt_record"]
    assert issue["packets"] == [2]
    assert "record 2 claims an original length of 262145 bytes, beyond 262144" in issue["summary"]
    pcap.write_bytes(pcap_bytes([(SEC, 1, f1, 54), (SEC, 2, f2, 262145), (SEC, 3, f3, 54)]))
    rows = tshark_frames(tshark, pcap, "frame.len")
    doc = scan_document(scan([str(pcap)]))
    assert [r[0] for r in rows] == [str(len(f1)), "262145", str(len(f3))]
    assert doc["inputs"][0]["bytes"] == len(f1) + 262145 + len(f3)


def test_an_original_length_below_the_captured_bytes_is_kept_as_in_pcap(tmp_path: Path) -> None:
    """tshark's frame.len is the record's original length even below its captured bytes,
    in snoop as in pcap, and netsleuth's pcap reader keeps it so: its snoop reader raised
    it to the captured bytes. The same records scan the same in both."""
    tshark = require("tshark", "tshark")
    f1, f2, f3 = udp_frames(3)
    snoop, pcap = tmp_path / "short.snoop", tmp_path / "short.pcap"
    snoop.write_bytes(snoop_file([record(f1, 1), record(f2, 2, orig=10), record(f3, 3)]))
    pcap.write_bytes(pcap_bytes([(SEC, 1, f1, 54), (SEC, 2, f2, 10), (SEC, 3, f3, 54)]))
    for path in (snoop, pcap):
        assert [r[0] for r in tshark_frames(tshark, path, "frame.len")] == ["54", "10", "54"]
    assert document(snoop) == document(pcap)
    assert '"bytes": 118' in document(snoop)


def test_padding_of_any_length_is_read_past_and_a_cut_inside_loses_the_record(
    tmp_path: Path,
) -> None:
    """snoop.c skips a record's padding whatever its length (a record of 5,000 bytes of it
    stopped the read here: more than 4,096 was taken for corruption), and when the file
    ends inside it the record is not read (it was, here): tshark's frames either way."""
    tshark = require("tshark", "tshark")
    f1, f2, f3 = udp_frames(3)
    path = tmp_path / "padded.snoop"
    path.write_bytes(snoop_file([record(f1, 1), record(f2, 2, pad=5000), record(f3, 3)]))
    assert len(tshark_frames(tshark, path, "frame.number")) == packets(path) == 3
    path.write_bytes(snoop_file([record(f1, 1), record(f2, 2)])[:-1])
    assert len(tshark_frames(tshark, path, "frame.number")) == 1
    doc = scan_document(scan([str(path)]))
    [issue] = [f for f in doc["findings"] if f["id"] == "capture.truncated_file"]
    assert doc["inputs"][0]["packets"] == 1 and issue["packets"] == [2]
    assert issue["summary"] == "the file ends inside record 2's padding; the record was not read"


def test_a_file_ending_inside_its_first_record_header_is_refused(tmp_path: Path) -> None:
    """snoop.c reads the first record's header to tell a Shomiti file, and refuses a file
    that ends inside it (tshark: cut short, no frame): one line, exit 2, from the console
    script too."""
    tshark = require("tshark", "tshark")
    path = tmp_path / "cut.snoop"
    path.write_bytes(snoop_file([record(udp_frames(1)[0])])[:26])
    done = subprocess.run([tshark, "-r", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "cut short" in done.stderr
    ran = run("scan", str(path), code=2)
    assert ran.err_lines() == [
        f"netsleuth: {path}: the file ends inside its first record's header (10 of 24 bytes)"
    ]
