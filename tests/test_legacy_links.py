"""Older link types from tcpdump's corpus: ARCnet as Linux captures it (129) and IP over
ATM (100, 106). The corpus captures are held to tcpdump (test_corpus.py) and tshark
(test_tshark_diff.py); here each header's shapes, built field by field."""

from __future__ import annotations

import pytest

from netsleuth import craft
from netsleuth.decode import L2
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
    t = dec([SNAP + b"\x86\xdd" + V6, V4, b"\xaa"], linktype=106)
    assert [int(v) for v in t.outer.ver] == [6, 4, 0]
    assert int(t.llc_dsap[0]) == 0xAA and int(t.llc_dsap[1]) == -1
    assert clean(t, 0) and clean(t, 1)
    assert anomalies(t, 2)["outer"] == {"ip.bad_version"}  # 0xaa: version 10
