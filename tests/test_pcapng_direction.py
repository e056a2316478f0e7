"""pcapng packet direction (epb_flags, draft-ietf-opsawg-pcapng section 4.3.1) and the IPv4
header checksum offload it explains. The file is built here byte by byte; tshark reads the
same directions."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from netsleuth import craft
from netsleuth.capture import open_capture
from netsleuth.craft import link
from netsleuth.findings import Severity
from netsleuth.scan import scan

S, D = "192.0.2.1", "198.51.100.7"


def block(btype: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return b"".join([struct.pack("<II", btype, size), body, struct.pack("<I", size)])


def option(code: int, value: bytes) -> bytes:
    pad = bytes(-len(value) % 4)
    return b"".join([struct.pack("<HH", code, len(value)), value, pad])


def epb(frame: bytes, options: bytes) -> bytes:
    pad = bytes(-len(frame) % 4)
    head = struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame))
    return block(6, b"".join([head, frame, pad, options, option(0, b"") if options else b""]))


def flags(direction: int) -> bytes:
    return option(2, struct.pack("<I", direction))


def capture(tmp_path: Path) -> Path:
    zero = craft.ether(craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x"), 17, checksum=0), 0x0800)
    wrong = craft.ether(craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x"), 17, checksum=0xBEEF), 0x0800)
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 0))
    packets = [
        epb(zero, flags(2)),  # 1 outbound, zero: offload
        epb(zero, flags(1)),  # 2 inbound, zero: bad
        epb(wrong, flags(2)),  # 3 outbound, not zero: bad
        epb(zero, option(1, b"a comment") + flags(2)),  # 4 the flags second: offload
        epb(zero, b""),  # 5 no options: direction unknown, offload
    ]
    path = tmp_path / "dir.pcapng"
    path.write_bytes(b"".join([shb, idb, *packets]))
    return path


def test_direction_is_read_from_the_options(tmp_path: Path) -> None:
    [batch] = list(open_capture(str(capture(tmp_path))).batches())
    assert batch.direction is not None
    assert batch.direction.tolist() == [2, 1, 2, 2, 0]


def test_zero_checksum_not_inbound_is_offload_the_rest_is_bad(tmp_path: Path) -> None:
    """Zero and outbound, or zero with no direction: the sender's NIC may fill it; zero and
    inbound, or wrong and not zero, is bad."""
    got = {f.id: f for f in scan([str(capture(tmp_path))]).findings}
    assert got["ipv4.checksum_offload"].packets == (1, 4, 5)
    assert got["ipv4.checksum_offload"].severity == Severity.INFO
    assert got["ipv4.bad_checksum"].packets == (2, 3)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_same_directions(tmp_path: Path) -> None:
    field = ["-T", "fields", "-e", "frame.packet_flags_direction"]
    out = subprocess.run(
        ["tshark", "-r", str(capture(tmp_path)), *field],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert [int(x, 16) if x else 0 for x in out[:5]] == [2, 1, 2, 2, 0]


def test_large_send_offload_leaves_length_and_checksum_to_the_nic(tmp_path: Path) -> None:
    """A total length of 0 and a zero checksum: a frame the sender's NIC cuts into segments
    and finishes (large send offload), even in a Linux cooked capture that says it came
    in; a total length of 0 with a wrong nonzero checksum is bad (Linux's BIG TCP writes
    length 0 with a right checksum). In a cooked capture, whose packet type says the
    direction and whose host, Linux, fills the checksum in software, a zero with a length
    is bad."""
    from netsleuth.capture.writer import write_pcap
    from netsleuth.craft.link import sll

    tcp = craft.tcp(S, D, 1, 80, b"x" * 1900, flags="PA")
    packets = [
        craft.ipv4(S, D, tcp, 6, total_length=0, checksum=0),  # 1 LSO
        craft.ipv4(S, D, tcp, 6, total_length=0, checksum=0xBEEF),  # 2 bad
        craft.ipv4(S, D, tcp, 6, checksum=0),  # 3 Linux never leaves it zero: bad
        craft.ipv4(S, D, tcp, 6, total_length=0),  # 4 BIG TCP: right, no finding
    ]
    path = tmp_path / "lso.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(k, sll(p, 0x0800)) for k, p in enumerate(packets)], linktype=113)
    got = {f.id: f for f in scan([str(path)]).findings}
    assert got["ipv4.checksum_offload"].packets == (1,)
    assert got["ipv4.checksum_offload"].severity == Severity.INFO
    assert got["ipv4.bad_checksum"].packets == (2, 3)


def test_tcpdumps_presumed_tso_frame_is_offload(corpus: Path) -> None:
    """tcpdump's own capture of a Windows host's large send (its expected output: "length
    2016 [was 0, presumed TSO], bad cksum 0"): the NIC's doing, not a bad header."""
    path = corpus / "ipv4_tcp_http_xml_tso.pcap"
    assert (
        "[was 0, presumed TSO], bad cksum 0 " in (corpus / "ipv4_tcp_http_xml_tso.out").read_text()
    )
    got = {f.id: f.packets for f in scan([str(path)]).findings}
    assert got.get("ipv4.checksum_offload") == (1,) and "ipv4.bad_checksum" not in got


def test_a_pcap_says_no_direction_so_a_zero_is_offload(tmp_path: Path) -> None:
    """What Wireshark on Windows writes of a host's own traffic with IPv4 checksum offload
    on (Npcap gives no direction): zeros, offload; a wrong nonzero checksum stays bad."""
    from netsleuth.capture.writer import write_pcap

    udp = craft.udp(S, D, 1, 53, b"q")
    frames = [
        craft.pad(craft.ether(craft.ipv4(S, D, udp, 17, checksum=c), 0x0800)) for c in (0, 1, 0)
    ]
    path = tmp_path / "windows.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(k, f) for k, f in enumerate(frames)])
    got = {f.id: f.packets for f in scan([str(path)]).findings}
    assert got == {"ipv4.checksum_offload": (1, 3), "ipv4.bad_checksum": (2,)}


@pytest.mark.parametrize(
    ("linktype", "wrap", "kind"),
    [
        # PKTAP (108-byte header; pth_flags at 36): in is bad, out is offload.
        (258, lambda p, d: struct.pack("<III24sI", 108, 1, 1, b"en0", d) + bytes(68) + p, "pktap"),
        # Solaris ipnet: hook 0 inbound (bad), 1 outbound (offload).
        (226, lambda p, d: struct.pack("!BBHIIIII", 1, 2, d - 1, 0, 2, 0, 0, 0) + p, "ipnet"),
        # NFLOG: a Linux host's log, whatever the direction: bad.
        (239, lambda p, d: link.nflog(p, 2), "nflog"),
    ],
)
def test_a_zero_the_link_header_says_came_in_is_bad(
    tmp_path: Path, linktype: int, wrap: Any, kind: str
) -> None:
    from netsleuth.capture.writer import write_pcap

    udp = craft.udp(S, D, 1, 53, b"q")
    ip = craft.ipv4(S, D, udp, 17, checksum=0)
    ether = kind == "pktap"
    frames = [wrap(craft.pad(craft.ether(ip, 0x0800)) if ether else ip, d) for d in (1, 2)]
    path = tmp_path / f"{kind}.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(k, f) for k, f in enumerate(frames)], linktype=linktype)
    got = {f.id: f.packets for f in scan([str(path)]).findings if "checksum" in f.id}
    want = (
        {"ipv4.bad_checksum": (1, 2)}
        if kind == "nflog"
        else {
            "ipv4.bad_checksum": (1,),
            "ipv4.checksum_offload": (2,),
        }
    )
    assert got == want


def test_a_short_frame_marked_sent_is_no_runt(tmp_path: Path) -> None:
    """Every frame here is 43 bytes: those marked outbound have not met their NIC's padding
    yet; inbound or unmarked ones are runts."""
    got = {f.id: f for f in scan([str(capture(tmp_path))]).findings}
    assert got["l2.runt"].packets == (2, 5)
