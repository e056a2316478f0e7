"""Every capture finding id the design requires (listed below) is produced by a capture
built here (that every id the code can emit is catalogued and documented:
tests/test_findings_catalogue.py)."""

from __future__ import annotations

from pathlib import Path

from netsleuth import craft
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.craft.l3 import DF, MF
from netsleuth.scan import scan

DESIGN_CAPTURE_IDS = {
    "l2.ieee8023_llc",
    "l2.unknown_ethertype",
    "l2.runt",
    "l2.padding_nonzero",
    "capture.truncated_packet",
    "capture.truncated_file",
    "ipv4.bad_header_length",
    "ipv4.bad_total_length",
    "ipv4.bad_checksum",
    "ipv4.fragment.zero_length",
    "ipv4.fragment.overlap",
    "ipv4.fragment.overlap_conflict",
    "ipv4.fragment.duplicate",
    "ipv4.fragment.tiny",
    "ipv4.fragment.too_large",
    "ipv4.fragment.misaligned",
    "ipv4.fragment.inconsistent",
    "ipv4.fragment.incomplete",
    "ipv4.fragment.df",
    "ipv4.fragment.too_many",
    "ipv6.fragment.zero_length",
    "ipv6.fragment.overlap",
    "ipv6.fragment.atomic",
    "ipv6.fragment.tiny",
    "ipv6.fragment.incomplete",
    "gre.v1_pptp",
    "gre.bad_version",
    "gre.routing",
    "tunnel.truncated",
    "tcp.bad_flags",
    "udp.bad_length",
}
S, D = "192.0.2.1", "198.51.100.1"
S6, D6 = "2001:db8::1", "2001:db8::2"


def e4(ip: bytes) -> bytes:
    return craft.ether(ip, 0x0800)


def f4(data: bytes, off: int, more: bool, ident: int, *, proto: int = 17, flags: int = 0) -> bytes:
    return e4(
        craft.ipv4(S, D, data, proto, ident=ident, frag_off=off, flags=flags | (MF if more else 0))
    )


def f6(data: bytes, off: int, more: bool, ident: int, nh: int = 17) -> bytes:
    inner = craft.ipv6_frag(data, nh, offset=off, more=more, ident=ident)
    return craft.ether(craft.ipv6(S6, D6, inner, 44), 0x86DD)


def everything() -> list[bytes]:
    frames = [f for _, f in incidents.incident2_stp_llc(seconds=1)]  # 802.3 LLC
    frames += [f for _, f in incidents.incident3_pptp(flows=1, packets_per_flow=1)]
    frames.append(craft.ether(b"\x00" * 46, 0x88CC))  # LLDP: unknown EtherType
    small = e4(craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"hi"), 17))
    frames += [small, craft.pad(small, fill=0x5A)]  # runt; non-zero padding
    frames.append(e4(craft.ipv4(S, D, b"", 59, ihl=4)))
    frames.append(e4(craft.ipv4(S, D, b"", 59, total_length=400)))
    frames.append(e4(craft.ipv4(S, D, b"", 59, checksum=0xDEAD)))
    frames.append(e4(craft.ipv4(S, D, craft.tcp(S, D, 1, 2, flags="SF"), 6)))
    frames.append(e4(craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x", length=300), 17)))
    frames.append(e4(craft.ipv4(S, D, b"\x00\x02\x08\x00", 47)))  # GRE version 2
    frames.append(e4(craft.ipv4(S, D, b"\x40\x00\x08\x00" + bytes(8), 47)))  # GRE routing
    # GRE cut short (behind IP protocol 47, a promise; a UDP port is only a hint: udp.py)
    frames.append(e4(craft.ipv4(S, D, b"\x00\x00", 47)))
    # IPv4 fragments.
    frames += [f4(b"a" * 16, 0, True, 1), f4(b"", 16, False, 1)]  # zero length
    frames += [f4(b"b" * 16, 0, True, 2), f4(b"c" * 16, 8, False, 2)]  # overlap, conflict
    frames += [f4(b"d" * 16, 0, True, 3), f4(b"d" * 16, 0, True, 3), f4(b"e" * 8, 16, False, 3)]
    frames += [f4(bytes(8), 0, True, 4, proto=6), f4(bytes(24), 8, False, 4, proto=6)]  # tiny
    frames.append(f4(b"f" * 16, 65528, False, 5))  # too large (and incomplete)
    frames += [f4(b"g" * 12, 0, True, 6), f4(b"h" * 8, 16, False, 6)]  # misaligned
    # Two ends before the datagram is complete: inconsistent. (Were the 16..24 end first,
    # it would complete the datagram and 24..32 would start a new one.)
    frames += [f4(b"i" * 16, 0, True, 7), f4(b"k" * 8, 24, False, 7), f4(b"j" * 8, 16, False, 7)]
    frames += [f4(b"l" * 8, 0, True, 8, flags=DF), f4(b"m" * 8, 8, False, 8)]  # DF
    frames += [f4(bytes([n]) * 8, 8 * n, n < 5, 9) for n in range(6)]  # six fragments
    # IPv6 fragments.
    frames += [f6(b"n" * 16, 0, True, 1), f6(b"", 16, False, 1)]
    frames += [f6(b"o" * 16, 0, True, 2), f6(b"p" * 16, 8, False, 2)]
    frames.append(f6(b"q" * 16, 0, False, 3))  # atomic
    frames += [f6(bytes(8), 0, True, 4, nh=6), f6(bytes(24), 8, False, 4, nh=6)]  # tiny
    return frames


def test_every_design_capture_id_is_produced(tmp_path: Path) -> None:
    frames = everything()
    path = tmp_path / "all.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(i * 1000, f) for i, f in enumerate(frames)])
    # A snapped packet and a cut-off tail, in the file itself.
    raw = bytearray(path.read_bytes())
    raw[24 + 12 : 24 + 16] = (len(frames[0]) + 100).to_bytes(4, "little")  # wire > captured
    path.write_bytes(bytes(raw[:-5]))
    produced = {f.id for f in scan([str(path)]).findings}
    assert DESIGN_CAPTURE_IDS - produced == set()
