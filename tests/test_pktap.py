"""PKTAP (258, and 149 as macOS wrote it): the packet behind Apple's header is decoded by its
DLT; the corpus's captures are held to tcpdump's output (test_corpus.py) and tshark's
(test_tshark_diff.py); here the header's own limits."""

from __future__ import annotations

import struct

import pytest

from netsleuth import craft
from netsleuth.decode import L2
from tests.checkutil import findings
from tests.decodeutil import anomalies, clean, dec, ports

V4 = craft.ipv4("192.0.2.1", "192.0.2.2", craft.udp("192.0.2.1", "192.0.2.2", 1, 53, b"q"), 17)


def pktap(packet: bytes, dlt: int, *, length: int = 108, rectype: int = 1) -> bytes:
    """The header's length, record type and DLT, then 96 bytes of the interface, process
    and service fields (zero here)."""
    return (
        struct.pack("<III", length, rectype, dlt)
        + bytes(length - 12 if length >= 12 else 0)
        + packet
    )


@pytest.mark.parametrize("linktype", [258, 149])
def test_the_packet_is_decoded_by_its_dlt(linktype: int) -> None:
    frames = [pktap(craft.ether(V4, 0x0800), 1), pktap(V4, 12), pktap(struct.pack("<I", 2) + V4, 0)]
    t = dec(frames, linktype=linktype)
    assert [L2(int(k)) for k in t.l2] == [L2.ETHERNET, L2.RAW, L2.NULL]
    for i in range(3):
        assert clean(t, i), anomalies(t, i)
        assert ports(t.outer, i) == (1, 53)


def test_the_packet_starts_where_the_header_says() -> None:
    """A header longer than today's 108 bytes (fields added later): the packet follows
    its length field, not the structure tcpdump knows."""
    t = dec([pktap(craft.ether(V4, 0x0800), 1, length=120)], linktype=258)
    assert ports(t.outer) == (1, 53) and clean(t), anomalies(t)


def test_a_short_length_is_a_bad_header_even_in_a_cut_record() -> None:
    """pkt_len under 108 is impossible whatever the snap length kept (tcpdump: "pkt_len
    too small"), not a truncation."""
    frame = struct.pack("<III", 0, 1, 1) + bytes(76)
    t = dec([frame], linktype=258, wirelen=[400])
    assert anomalies(t)["outer"] == {"l2.bad_pseudo_header"}


def test_a_record_with_no_data_ends_quietly() -> None:
    t = dec([pktap(b"", 1, rectype=0)], linktype=258)
    assert int(t.outer.ver[0]) == 0 and clean(t)


@pytest.mark.parametrize(
    "frame",
    [
        pktap(V4, 12, length=100),  # shorter than the header
        struct.pack("<III", 4000, 1, 12) + bytes(96) + V4,  # past the frame
        pktap(V4, 1 << 16),  # no such link type
    ],
    ids=["short", "long", "dlt"],
)
def test_bad_headers_are_named(frame: bytes) -> None:
    assert anomalies(dec([frame], linktype=258))["outer"] == {"l2.bad_pseudo_header"}


def test_an_undecoded_link_type_behind_pktap_is_the_one_named() -> None:
    f = findings([pktap(bytes(20), 147)], linktype=258)["capture.unsupported_linktype/outer"]
    assert f.evidence["linktypes"] == {"147": {"name": "LINKTYPE_USER0 (147)", "packets": 1}}
