"""The FCS length a capture file declares, read as tshark 4.0 reads it: pcapng's if_fcslen
(draft section 4.2) per interface and epb_flags bits 5-8 (section 4.3.1) per packet, the
pcap header's FCS length (the link-type field's P bit and top four bits, in 16-bit words).
Files built byte by byte (tests/capfiles.py), compared with tshark frame by frame, and
scanned as the same frames in a pcap file without FCSs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netsleuth.capture import open_capture
from netsleuth.craft import incidents
from netsleuth.craft.encap import pppoe_session
from netsleuth.craft.l2 import dot1q, ether, ieee8023, llc, pad, stp_bpdu
from netsleuth.craft.l3 import ipv4, ipv6
from netsleuth.craft.l4 import tcp, udp
from netsleuth.decode import decode
from netsleuth.decode.table import PacketTable
from netsleuth.report.jsonout import scan_document
from netsleuth.scan import scan
from tests.capfiles import epb, fcs_flags, idb, pcap_bytes, shb, with_fcs
from tests.systools import require
from tests.wireframes import tshark_frames

T0 = incidents.T0
DST = "192.0.2.99"
# The pcap header's link-type field: Ethernet, P (an FCS length follows), 2 16-bit words.
ETHERNET_FCS_32 = 1 | 0x04000000 | 2 << 28


def udp4(src: str, payload: bytes = b"x" * 12) -> bytes:
    return ipv4(src, DST, udp(src, DST, 40000, 40001, payload), 17)


def frames() -> list[bytes]:
    """Frames as a switch port carries them: minimum-size UDP, one padded with non-zero
    bytes (Etherleak), a 50-byte runt, 802.1Q-tagged, 802.3/LLC spanning tree, ARP, PPPoE,
    IPv6 and a full-size TCP segment (each without its FCS)."""
    bridge = b"\x80\x00" + bytes.fromhex("00259ec0ffee")
    bpdu = stp_bpdu(version=2, bpdu_type=0x02, root=bridge, bridge=bridge)
    seg = tcp("198.51.100.8", DST, 22, 50000, bytes(range(256)) * 5 + b"z" * 180, flags="PA")
    v6 = udp("2001:db8::1", "2001:db8::2", 40000, 40001, b"q" * 12)
    return [
        pad(ether(udp4("198.51.100.1"), 0x0800)),
        pad(ether(udp4("198.51.100.2"), 0x0800), fill=0xAB),
        ether(udp4("198.51.100.3", b"r" * 4), 0x0800),
        pad(ether(dot1q(udp4("198.51.100.4"), 0x0800, vid=7), 0x8100)),
        pad(ieee8023(llc(bpdu, dsap=0x42, ssap=0x42), src="00:25:9e:c0:ff:ee")),
        pad(ether(bytes.fromhex("0001080006040001") + bytes(20), 0x0806)),
        pad(ether(pppoe_session(udp4("198.51.100.6"), 0x0021), 0x8864)),
        ether(ipv6("2001:db8::1", "2001:db8::2", v6, 17), 0x86DD),
        ether(ipv4("198.51.100.8", DST, seg, 6), 0x0800),
    ]


def tshark_rows(path: Path, *fields: str) -> list[list[str]]:
    return tshark_frames(require("tshark", "tshark"), path, *fields, check=True)


def each_with_fcs(plain: list[bytes]) -> list[list[str]]:
    """tshark's frame.len, eth.fcs and eth.trailer for frames() that end in their FCS:
    the frame and its FCS, the FCS, and no trailer but the Etherleak frame's padding
    (not zeros, so a trailer to tshark)."""
    rows = []
    for k, frame in enumerate(plain):
        fcs = f"0x{int.from_bytes(with_fcs(frame)[-4:], 'big'):08x}"
        rows.append([str(len(frame) + 4), fcs, "ab" * 6 if k == 1 else ""])
    return rows


def table(path: Path) -> PacketTable:
    reader = open_capture(str(path))
    t = decode(next(iter(reader.batches())))
    reader.source.close()
    return t


def document(path: Path) -> dict[str, Any]:
    """scan's JSON of a file, without what names the file, its format or its bytes (the
    bytes the file records: FCSs included where it has them)."""
    doc = scan_document(scan([str(path)]))
    for part in doc["inputs"]:
        for key in ("path", "format", "bytes"):
            part.pop(key)
    for f in doc["findings"]:
        f.pop("input")
    doc.pop("bytes")
    return doc


def findings(doc: dict[str, Any]) -> dict[str, list[int]]:
    """Finding id -> its frames."""
    return {f["id"]: f["packets"] for f in doc["findings"]}


def without_fcs(path: Path, frames: list[bytes]) -> Path:
    """The frames in a pcap file, as a capture without FCSs holds them."""
    path.write_bytes(pcap_bytes([(T0 // 10**9, k, f) for k, f in enumerate(frames)]))
    return path


def test_an_interface_declaring_a_4_byte_fcs(tmp_path: Path) -> None:
    """if_fcslen 4: tshark takes the last 4 bytes of every frame for its FCS (the runt
    under 64 bytes, the tagged and the PPPoE frames too, which its heuristic would not),
    none as trailer, and so does netsleuth: the scan is the frames' as a pcap file without
    FCSs holds them (the runt found, the Etherleak padding found, not the FCS as padding
    or trailer)."""
    plain = frames()
    path = tmp_path / "fcs.pcapng"
    body = [epb("<", 0, T0 // 1000 + k, with_fcs(f)) for k, f in enumerate(plain)]
    path.write_bytes(b"".join([shb(), idb("<", 1, fcslen=4), *body]))
    assert tshark_rows(path, "frame.len", "eth.fcs", "eth.trailer") == each_with_fcs(plain)
    t = table(path)
    assert t.fcs.all() and t.frame_len.tolist() == [len(f) for f in plain]
    doc = document(path)
    assert doc == document(without_fcs(tmp_path / "plain.pcap", plain))
    assert findings(doc) == {"l2.padding_nonzero": [2], "l2.runt": [3], "l2.ieee8023_llc": [5]}


def test_each_interface_and_packet_says_its_own(tmp_path: Path) -> None:
    """if_fcslen per interface, as tshark 4.0 reads it: 4 and 32 (bits, as the draft has
    it) both 4 octets, 0 none; an epb_flags FCS length overrides its interface's (0 there
    says nothing); another length (2) is left out of the payload and the FCS is then the
    heuristic's (a 64-byte frame has one, the 50-byte runt not). An interface that says
    nothing is taken to hold no FCS, where tshark guesses: the one difference."""
    small, runt = frames()[0], frames()[2]
    blocks = [shb()] + [idb("<", 1, fcslen=n) for n in (4, 0, 32, 2)] + [idb("<", 1)]
    # Interface, epb_flags FCS length, whether the 64-byte frame and the runt end in one.
    packets = [
        (0, None, True, True), (0, 0, True, True), (0, 2, True, False),
        (1, None, False, False), (1, 4, True, True),
        (2, None, True, True), (3, None, True, False), (4, 4, True, True),
    ]  # fmt: skip
    for k, (iface, flags, _, _) in enumerate([*packets, (4, None, False, False)]):
        opts = b"" if flags is None else fcs_flags("<", flags)
        for frame in (small, runt):
            blocks.append(epb("<", iface, T0 // 1000 + k, with_fcs(frame), opts=opts))
    path = tmp_path / "interfaces.pcapng"
    path.write_bytes(b"".join(blocks))
    want = [has for p in packets for has in p[2:]]
    shown = [bool(r[0]) for r in tshark_rows(path, "eth.fcs")]
    assert shown == [*want, True, False]  # tshark's heuristic where nothing is said
    t = table(path)
    assert t.fcs.tolist() == [*want, False, False]
    lengths = [len(f) + 4 * (not has) for f, has in zip([small, runt] * 9, t.fcs, strict=True)]
    assert t.frame_len.tolist() == lengths


def test_the_pcap_header_declares_the_fcs_length(tmp_path: Path) -> None:
    """The link-type field's P bit and FCS length of 2 16-bit words: tshark takes each
    frame's last 4 bytes for its FCS, and netsleuth scans the frames as a pcap file
    without FCSs holds them. The link type is the field's low 16 bits (Ethernet). Without
    P the top bits say nothing: no FCS is taken (tshark guesses there)."""
    plain = frames()
    records = [(T0 // 10**9, k, with_fcs(f)) for k, f in enumerate(plain)]
    path, bare = tmp_path / "fcs.pcap", tmp_path / "bare.pcap"
    path.write_bytes(pcap_bytes(records, linktype=ETHERNET_FCS_32))
    bare.write_bytes(pcap_bytes(records, linktype=ETHERNET_FCS_32 & ~0x04000000))
    assert tshark_rows(path, "frame.len", "eth.fcs", "eth.trailer") == each_with_fcs(plain)
    doc = document(path)
    assert doc == document(without_fcs(tmp_path / "plain.pcap", plain))
    assert doc["summary"]["link"] == {"ethernet": 8, "ieee8023": 1}
    t = table(bare)
    assert not t.fcs.any() and t.frame_len.tolist() == [len(f) + 4 for f in plain]


def test_a_length_running_into_a_declared_fcs_is_bad(tmp_path: Path) -> None:
    """The declared FCS is no payload: an IPv4 total length that reaches into it runs past
    the packet, to tshark ("IPv4 total length exceeds packet length") and to netsleuth
    (ipv4.bad_total_length), where an FCS it does not know of held the bytes."""
    datagram = udp("198.51.100.1", DST, 40000, 40001, b"y" * 60)
    ok = ether(ipv4("198.51.100.1", DST, datagram, 17), 0x0800)
    # 2 bytes into the FCS: the IP header and its UDP datagram, 2 bytes more.
    into = ether(ipv4("198.51.100.1", DST, datagram, 17, total_length=20 + 68 + 2), 0x0800)
    path = tmp_path / "into.pcapng"
    body = [epb("<", 0, T0 // 1000 + k, with_fcs(f)) for k, f in enumerate([ok, into])]
    path.write_bytes(b"".join([shb(), idb("<", 1, fcslen=4), *body]))
    rows = tshark_rows(path, "_ws.expert.message")
    assert "IPv4 total length exceeds packet length" not in rows[0][0]
    assert "IPv4 total length exceeds packet length" in rows[1][0]
    assert findings(document(path)) == {"ipv4.bad_total_length": [2]}


def test_a_record_cut_inside_its_declared_fcs_holds_the_whole_frame(tmp_path: Path) -> None:
    """Records snapped 2 bytes into their declared FCS, and right after the frame, are
    whole frames; one snapped inside the frame is a truncated packet, as tshark shows
    their lengths."""
    frame = ether(udp4("198.51.100.1", b"y" * 100), 0x0800)
    whole = with_fcs(frame)
    cuts = [len(whole) - 2, len(frame), len(frame) - 10]
    body = [epb("<", 0, T0 // 1000 + k, whole[:n], wirelen=len(whole)) for k, n in enumerate(cuts)]
    path = tmp_path / "snapped.pcapng"
    path.write_bytes(b"".join([shb(), idb("<", 1, fcslen=4), *body]))
    rows = tshark_rows(path, "frame.len", "frame.cap_len")
    assert rows == [[str(len(whole)), str(n)] for n in cuts]
    t = table(path)
    assert t.fcs.all() and t.snapped.tolist() == [False, False, True]
    assert findings(document(path)) == {"capture.truncated_packet": [3]}
