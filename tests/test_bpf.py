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
from tests.bpfutil import filter_bytes, frame, inner_ip, matches

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
    assert bad.stderr.count("\n") == 1 and "inner.src needs an IPv4" in bad.stderr
