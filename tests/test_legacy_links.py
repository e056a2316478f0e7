"""Older link types from tcpdump's corpus: ARCnet as Linux captures it (129) and IP over
ATM (100, 106). The corpus captures are held to tcpdump (test_corpus.py) and tshark
(test_tshark_diff.py); here each header's shapes, built field by field."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from netsleuth import craft
from netsleuth.decode import L2
from tests import clirun
from tests.capfiles import pcap_bytes
from tests.decodeutil import anomalies, clean, dec, ports

A, B = "192.0.2.1", "192.0.2.2"
V4 = craft.ipv4(A, B, craft.udp(A, B, 1, 53, b"q"), 17)
V6 = craft.ipv6(
    "2001:db8::1", "2001:db8::2", craft.udp("2001:db8::1", "2001:db8::2", 1, 53, b"q"), 17
)
SNAP = bytes.fromhex("aaaa03000000")


def arcnet(kind: int, packet: bytes) -> bytes:
    """Source, destination, the driver's 2-byte offset, the protocol id; the RFC 1201 ids
    then a split flag and a sequence number."""
    short = kind in (0xF0, 0xF1, 0x80)
    return bytes([0x50, 0xBE, 0, 0, kind]) + (b"" if short else b"\x00\x12\x34") + packet


@pytest.mark.parametrize(
    ("kind", "packet", "version"),
    [(0xD4, V4, 4), (0xF0, V4, 4), (0xC4, V6, 6)],
    ids=["rfc1201-ip", "rfc1051-ip", "ipv6"],
)
def test_arcnet_protocol_ids_reach_ip(kind: int, packet: bytes, version: int) -> None:
    t = dec([arcnet(kind, packet)], linktype=129)
    assert int(t.l2[0]) == L2.ARCNET and int(t.outer.ver[0]) == version
    assert clean(t), anomalies(t)
    assert ports(t.outer) == (1, 53)


def test_arcnet_other_protocols_end_quietly_and_short_headers_are_cut() -> None:
    t = dec([arcnet(0xDD, b"\x00" * 20), arcnet(0xD4, b"")[:6], b"\x50\xbe\x00"], linktype=129)
    assert int(t.outer.ver[0]) == 0 and clean(t, 0)  # AppleTalk: not decoded, not wrong
    assert anomalies(t, 1)["outer"] == {"l2.truncated"}
    assert anomalies(t, 2)["outer"] == {"l2.truncated"}


def test_atm_rfc1483_is_llc_first() -> None:
    t = dec([SNAP + b"\x08\x00" + V4], linktype=100)
    assert (int(t.l2[0]), int(t.outer.ver[0]), int(t.llc_dsap[0])) == (L2.ATM, 4, 0xAA)
    assert clean(t), anomalies(t)


def test_atm_clip_is_llc_snap_when_it_starts_so_and_raw_ip_otherwise() -> None:
    """tcpdump print-cip.c compares min(6, caplen) bytes with the LLC/SNAP header: a record
    of one 0xaa byte is a cut LLC header, not an IP header of version 10."""
    t = dec([SNAP + b"\x86\xdd" + V6, V4, b"\xaa"], linktype=106)
    assert [int(v) for v in t.outer.ver] == [6, 4, 0]
    assert int(t.llc_dsap[0]) == 0xAA and int(t.llc_dsap[1]) == -1
    assert clean(t, 0) and clean(t, 1)
    assert anomalies(t, 2)["outer"] == {"l2.llc_truncated"}


def test_bridged_ethernet_over_atm() -> None:
    """RFC 2684 section 5.2: LLC/SNAP with OUI 00-80-C2, PID 7 (no FCS) or 1 (the LAN FCS
    kept, not payload), 2 bytes of pad, then the Ethernet frame: PPPoE over DSL's shape."""
    eth = craft.ether(V4, 0x0800)
    head = bytes.fromhex("aaaa030080c2")
    fcs = zlib.crc32(eth).to_bytes(4, "little")
    frames = [head + b"\x00\x07\x00\x00" + eth, head + b"\x00\x01\x00\x00" + eth + fcs]
    t = dec(frames, linktype=100)
    for i in range(2):
        assert int(t.outer.ver[i]) == 4 and clean(t, i), anomalies(t, i)
        assert ports(t.outer, i) == (1, 53)
    # the FCS is not a trailer of the IP packet's frame: the frame ends before it
    assert int(t.wend[1]) - int(t.start[1]) == len(frames[1]) - 4


def test_arcnet_arp_is_named_by_its_ethertype() -> None:
    t = dec([arcnet(0xD5, bytes(28)), arcnet(0xF1, bytes(28))], linktype=129)
    assert [int(e) for e in t.ethertype] == [0x0806, 0x0806]


def test_steer_names_frames_that_name_no_ethertype(tmp_path: Path) -> None:
    """An ARCnet AppleTalk packet carries no EtherType: steer's non-IP class says so
    instead of counting it as EtherType 0x0000."""
    path = tmp_path / "arcnet.pcap"
    frames = [arcnet(0xD4, V4), arcnet(0xDD, bytes(20))]
    path.write_bytes(pcap_bytes([(1, k, f) for k, f in enumerate(frames)], linktype=129))
    out = clirun.invoke("steer", "--format", "json", str(path)).json()
    assert [(c["class"], c["packets"]) for c in out["flows"]["non_ip"]] == [
        ("no EtherType named (another protocol behind the link layer, or no packet)", 1)
    ]
