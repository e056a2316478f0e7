"""Capture filters: tcpdump syntax through libpcap, and the inner-field terms at fixed
offsets behind each encapsulation, run by libpcap's own interpreter (pcap_offline_filter)
on crafted frames: the target passes, and changing any byte the filter must test makes it
fail while changing any other byte of the headers does not."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
from pathlib import Path

import pytest

from netsleuth.bpf import compile_filter, format_program
from netsleuth.errors import InputError
from tests.bpfutil import filter_bytes, frame, inner_ip, inner_ip6, matches

if ctypes.util.find_library("pcap") is None:
    pytest.skip(
        "libpcap is not installed (make test installs tcpreplay, which brings it)",
        allow_module_level=True,
    )

NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
FILTER = "inner.src 27.18.0.0/16 and inner.proto tcp"
CASES = [
    ("", False),
    ("vlan", False),
    ("ipip", False),
    ("gre", False),
    ("gre", True),
    ("vlan,gre-teb", False),
    ("vlan,gre-teb", True),  # incident 1: VLAN 10 / IPv4 / GRE with key / TEB
    ("gre-teb", True),
    ("vlan,vxlan", False),
]


@pytest.mark.parametrize(("encap", "key"), CASES)
def test_inner_filter_tests_exactly_the_header_bytes(encap: str, key: bool) -> None:
    prog = compile_filter(FILTER, encap).file_program
    target = frame(encap, inner_ip("tcp"), key=key)
    assert matches(prog, target)
    assert not matches(prog, frame(encap, inner_ip("udp"), key=key))
    assert not matches(prog, frame(encap, inner_ip("tcp", src="27.19.5.6"), key=key))
    must = filter_bytes(encap, key=key)
    inner_end = max(must) + 9  # through the inner addresses
    for off in range(inner_end):
        mutated = bytearray(target)
        mutated[off] ^= 0xFF
        assert matches(prog, bytes(mutated)) is (off not in must), off


FILTER6 = "inner.src 2001:db8:1b12::/48 and inner.proto tcp"


@pytest.mark.parametrize(("encap", "key"), CASES)
def test_inner_ipv6_filter_tests_exactly_the_header_bytes(encap: str, key: bool) -> None:
    """The same with an inner IPv6 header (6in4, protocol 41, for ipip): a /48 is one
    full word and a masked half word of the source; next header at +6."""
    prog = compile_filter(FILTER6, encap).file_program
    target = frame(encap, inner_ip6("tcp"), key=key)
    assert matches(prog, target)
    assert not matches(prog, frame(encap, inner_ip6("udp"), key=key))
    assert not matches(prog, frame(encap, inner_ip6("tcp", src="2001:db8:1b13::6"), key=key))
    assert not matches(prog, frame(encap, inner_ip("tcp"), key=key))  # inner IPv4
    must = filter_bytes(encap, key=key, src_bytes=6, version=6)
    for off in range(max(must) + 20):  # through the destination address
        mutated = bytearray(target)
        mutated[off] ^= 0xFF
        assert matches(prog, bytes(mutated)) is (off not in must), off


def test_inner_ipv6_proto_sees_only_the_first_next_header() -> None:
    """A fixed-offset filter reads the Next Header field of the fixed header: behind an
    extension header (here the fragment header, 44) it names that header, not TCP."""
    fragment = frame("vlan,gre-teb", inner_ip6("tcp", frag=True), key=True)
    assert not matches(compile_filter("inner.proto tcp", "vlan,gre-teb").file_program, fragment)
    frag = compile_filter("inner.proto ipv6-frag", "vlan,gre-teb").file_program
    assert matches(frag, fragment)
    assert not matches(frag, frame("vlan,gre-teb", inner_ip6("tcp"), key=True))


def test_inner_proto_without_an_address_matches_both_versions() -> None:
    prog = compile_filter("inner.proto udp", "vxlan").file_program
    assert matches(prog, frame("vxlan", inner_ip("udp")))
    assert matches(prog, frame("vxlan", inner_ip6("udp")))
    assert not matches(prog, frame("vxlan", inner_ip6("tcp")))
    host = compile_filter("inner.host 2001:db8:ffff::3/128", "gre").file_program
    assert matches(host, frame("gre", inner_ip6("udp")))  # the destination
    assert not matches(host, frame("gre", inner_ip("udp")))
    with pytest.raises(InputError, match="IPv4 or IPv6: give addresses of one version"):
        compile_filter("inner.src 27.18.0.0/16 and inner.dst 2001:db8::/32", "gre")


def test_incident1_filter_is_the_hand_written_offset() -> None:
    """Incident 1's team matched the inner source at ip[54:4] (the outer IPv4 header
    starts at frame byte 18 behind the 802.1Q tag): the generated filter tests the same
    bytes, frame offset 72."""
    c = compile_filter("inner.src 27.18.0.0/16", "vlan,gre-teb")
    assert "ether[72:4] & 0xffff0000 = 0x1b120000" in c.expression


def test_live_program_checks_the_stripped_tag_first() -> None:
    c = compile_filter(FILTER, "vlan,gre-teb")
    # ld vlan_avail (SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT = -4096 + 48), then the program
    # compiled for the frame without its tag: the tagless incident frame passes it.
    assert c.program[0] == (0x20, 0, 0, 0xFFFFF030)
    untagged = frame("gre-teb", inner_ip("tcp"), key=True)
    assert matches(c.program[3:], untagged)
    assert not matches(c.program, untagged)  # no ancillary data here: tag absent


def test_tcpdump_syntax_goes_through_libpcap() -> None:
    prog = compile_filter("ip proto 47").program
    assert matches(prog, frame("gre", inner_ip()))
    assert not matches(prog, frame("ipip", inner_ip()))
    with pytest.raises(InputError, match="syntax error"):
        compile_filter("ip prot 47")
    with pytest.raises(InputError, match="--encap goes with inner"):
        compile_filter("ip", "vlan")
    with pytest.raises(InputError, match="unknown term"):
        compile_filter("inner.port 80", "gre")
    with pytest.raises(InputError, match="a term must follow 'and'"):
        compile_filter("inner.src 2001:db8::/32 and", "gre")


def test_a_filter_is_compiled_for_the_interfaces_link_type() -> None:
    """Raw IP (a tun or WireGuard interface, LINKTYPE_RAW) has no Ethernet header: the
    program libpcap compiles for DLT_RAW matches the packet itself (run here by libpcap's
    own interpreter); the Ethernet one does not. inner.* terms are Ethernet offsets."""
    udp, tcp = inner_ip("udp"), inner_ip("tcp")
    raw = compile_filter("udp and dst port 53", linktype=101).program
    assert matches(raw, udp) and not matches(raw, tcp)
    assert not matches(compile_filter("udp and dst port 53").program, udp)
    for linktype in (105, 127):  # Wi-Fi monitor interfaces compile too
        assert compile_filter("udp", linktype=linktype).program
    with pytest.raises(InputError, match="offsets behind an Ethernet header"):
        compile_filter("inner.proto udp", linktype=101)


def test_a_scoped_ipv6_address_is_refused_not_stripped() -> None:
    # ipaddress accepts fe80::1%eth0; the zone is in no header, so matching fe80::1 alone
    # would be a different filter from the one written.
    with pytest.raises(InputError, match="no scope zone"):
        compile_filter("inner.host fe80::1%eth0", "gre")
    assert compile_filter("inner.host fe80::1", "gre").expression


def test_bpf_command_prints_expression_and_program() -> None:
    r = subprocess.run(
        [NETSLEUTH, "bpf", "inner.src 27.18.0.0/16", "--encap", "vlan,gre-teb"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    c = compile_filter("inner.src 27.18.0.0/16", "vlan,gre-teb")
    assert c.expression in r.stdout
    assert format_program(c.file_program) in r.stdout
    bad = subprocess.run(
        [NETSLEUTH, "bpf", "inner.src x", "--encap", "gre"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "inner.src needs an IPv4 or IPv6" in bad.stderr
