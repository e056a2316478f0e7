"""The stateless capture checks: each finding on a packet that has the problem, and none on
the same packet without it."""

from __future__ import annotations

import struct

import pytest

from netsleuth import craft
from netsleuth.craft import incidents
from netsleuth.craft.l2 import ieee8023
from tests.checkutil import findings

S, D = "10.0.0.1", "10.0.0.2"


def eth(ip: bytes) -> bytes:
    return craft.ether(ip, 0x0800)


def seg(flags: str | int) -> bytes:
    return eth(craft.ipv4(S, D, craft.tcp(S, D, 1, 2, flags=flags), 6))


def test_ipv4_checksum_outer_inner_and_options() -> None:
    good = craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x"), 17)
    bad = craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x"), 17, checksum=0xBEEF)
    opts_good = craft.ipv4(S, D, b"", 59, options=b"\x94\x04\x00\x00")
    opts_bad = craft.ipv4(S, D, b"", 59, options=b"\x94\x04\x00\x00", checksum=1)
    tunnelled_bad = craft.ipv4("1.1.1.1", "2.2.2.2", craft.gre(bad, 0x0800), 47)
    got = findings([eth(good), eth(bad), eth(opts_good), eth(opts_bad), eth(tunnelled_bad)])
    assert got["ipv4.bad_checksum/outer"].packets == (2, 4)
    assert got["ipv4.bad_checksum/inner"].packets == (5,)


def test_every_checksum_in_the_incident_captures_verifies() -> None:
    frames = [f for _, f in incidents.incident1_poison_fragment()]
    frames += [f for _, f in incidents.incident3_pptp(flows=50)]
    assert not [k for k in findings(frames) if k.startswith("ipv4.bad_checksum")]


def test_tcp_flags() -> None:
    bad: list[str | int] = ["SF", "SR", "FR", 0, "F", "FPU", "P"]
    good: list[str | int] = ["S", "SA", "A", "FA", "R", "RA", "PA", "SAE"]
    got = findings([seg(f) for f in bad + good])
    assert got["tcp.bad_flags/outer"].packets == tuple(range(1, len(bad) + 1))


def test_runt_and_padding() -> None:
    small = eth(craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"abcd"), 17))  # 46 bytes
    zero_padded = craft.pad(small)
    junk_padded = craft.pad(small, fill=0xA5)
    got = findings([small, zero_padded, junk_padded])
    assert got["l2.runt/outer"].packets == (1,)
    assert got["l2.runt/outer"].severity.label == "info"
    assert got["l2.padding_nonzero/outer"].packets == (3,)


@pytest.mark.parametrize("linktype", [281, 284, 285])
def test_a_dsa_record_is_judged_as_the_conduit_frame(linktype: int) -> None:
    """A DSA record's switch tag is inside the frame on the conduit link: a 50- or 54-byte
    record is a runt there (tests/test_wifi.py: behind PPI the record is not the frame)."""
    small = eth(craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"abcd"), 17))  # 46 bytes
    tag = bytes(8) if linktype == 285 else bytes(4)  # EDSA: 8 bytes, the others 4
    dsa = small[:12] + tag + small[12:]
    assert findings([dsa], linktype=linktype)["l2.runt/outer"].packets == (1,)


def test_padding_inside_a_tunnel_is_checked_behind_pktap() -> None:
    """A tunnelled Ethernet frame's length is the tunnel's to say, whatever the record's
    link type: its padding is judged behind a PKTAP header too."""
    inner = craft.pad(eth(craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x"), 17)), fill=0xFF)
    outer = eth(craft.ipv4("198.51.100.1", "198.51.100.2", craft.gre(inner, 0x6558), 47))
    header = struct.pack("<III", 108, 1, 1) + bytes(96)
    got = findings([header + outer], linktype=258)
    assert got["l2.padding_nonzero/outer"].packets == (1,)


def test_padding_of_a_tunnelled_frame_is_checked_inside_the_tunnel() -> None:
    frames = [f for _, f in incidents.incident1_poison_fragment(normal=2)]
    assert "l2.padding_nonzero/outer" not in findings(frames)  # incident 1 pads with zeros
    inner = craft.pad(eth(craft.ipv4(S, D, b"", 6, frag_off=1400)), fill=0xFF)
    outer = eth(craft.ipv4("1.1.1.1", "2.2.2.2", craft.gre(inner, 0x6558), 47))
    assert findings([outer])["l2.padding_nonzero/outer"].packets == (1,)


def test_8023_llc_names_the_bpdus() -> None:
    got = findings([f for _, f in incidents.incident2_stp_llc(seconds=6)])
    f = got["l2.ieee8023_llc/outer"]
    assert (f.count, f.severity.label) == (3, "warning")
    assert "RSTP BPDU (SAP 0x42) x3" in f.summary
    assert f.refs == ("linux-nohandler-rx-dropped",)
    netbios = craft.pad(ieee8023(craft.llc(b"\x00" * 10, dsap=0xF0, ssap=0xF0)))
    assert "NetBIOS (SAP 0xF0) x1" in findings([netbios])["l2.ieee8023_llc/outer"].summary


def test_pptp_counts_call_ids() -> None:
    got = findings([f for _, f in incidents.incident3_pptp(flows=10)])
    f = got["gre.v1_pptp/outer"]
    assert f.count == 20 and f.evidence == {"call_ids": 2}
