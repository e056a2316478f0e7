"""The lab's pure parts: frames made sendable, what the receiver needs, counter parsing,
netlink link stats, stale-namespace ownership and the verdict rules."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from netsleuth.craft import ether, gre, ipv4, udp, vxlan
from netsleuth.lab.counters import LINK_STATS, delta, mib_counters, parse_links
from netsleuth.lab.frames import Needs, VxlanNeed, note_needs, prepare, rewrite_dst, to_ethernet
from netsleuth.lab.replay import parse_frame_list
from netsleuth.lab.sandbox import stale_namespaces
from netsleuth.lab.trace import Event
from netsleuth.lab.verdict import Named, Skbs, judge
from tests.clirun import invoke

MAC = bytes.fromhex("0a0b0c0d0e0f")
IP4 = ipv4("192.0.2.1", "192.0.2.9", udp("192.0.2.1", "192.0.2.9", 1, 2, b"x"), 17)


def test_cooked_and_raw_captures_get_an_ethernet_header() -> None:
    sll = b"".join((bytes(14), struct.pack("!H", 0x0800), IP4))
    sll2 = b"".join((struct.pack("!H", 0x0800), bytes(18), IP4))
    for linktype, rec in ((113, sll), (276, sll2), (101, IP4), (228, IP4)):
        eth = to_ethernet(linktype, rec)
        assert eth == b"".join((bytes(12), b"\x08\x00", IP4)), linktype
    loop = b"".join((struct.pack("!I", 2), IP4))
    assert to_ethernet(108, loop) == b"".join((bytes(12), b"\x08\x00", IP4))
    # An SLL protocol below 0x0600 (802.2 = 0x0004) becomes an 802.3 length field.
    llc = b"\x42\x42\x03" + bytes(35)
    eth = to_ethernet(113, b"".join((bytes(14), b"\x00\x04", llc)))
    assert eth is not None and eth[12:14] == struct.pack("!H", len(llc))
    assert to_ethernet(147, IP4) is None  # a DLT_USER link type: not replayable
    assert prepare(7, 147, IP4, MAC, Needs()).data is None
    huge = prepare(8, 1, ether(bytes(70_000), 0x0800), MAC, Needs())
    assert huge.data is None and "longer than any frame" in huge.note


def test_only_unicast_destinations_are_rewritten() -> None:
    uni = ether(IP4, 0x0800, dst="02:00:00:00:00:02")
    assert rewrite_dst(uni, MAC)[:6] == MAC
    assert rewrite_dst(uni, MAC)[6:] == uni[6:]
    stp = ether(b"\x42\x42\x03", 0x0003, dst="01:80:c2:00:00:00")
    assert rewrite_dst(stp, MAC) == stp
    bcast = ether(IP4, 0x0800, dst="ff:ff:ff:ff:ff:ff")
    assert rewrite_dst(bcast, MAC) == bcast


def test_needs_name_addresses_vxlan_and_tunnels() -> None:
    needs = Needs()
    note_needs(ether(IP4, 0x0800), needs)
    inner = ether(
        ipv4("10.0.0.1", "10.0.0.2", udp("10.0.0.1", "10.0.0.2", 5, 6, b"i"), 17),
        0x0800,
        dst="02:aa:00:00:00:01",
    )
    outer = ipv4(
        "198.51.100.1",
        "198.51.100.2",
        udp("198.51.100.1", "198.51.100.2", 999, 4789, vxlan(inner, vni=42)),
        17,
    )
    note_needs(ether(outer, 0x0800), needs)
    note_needs(ether(ipv4("203.0.113.1", "203.0.113.2", gre(IP4, 0x0800), 47), 0x0800), needs)
    mcast = ipv4("192.0.2.1", "224.0.0.5", b"", 89)
    note_needs(ether(mcast, 0x0800), needs)
    assert list(needs.addresses) == ["192.0.2.9", "198.51.100.2", "203.0.113.2"]
    need = VxlanNeed(42, 4789, "198.51.100.2")
    assert list(needs.vxlan[need]) == ["10.0.0.2"]
    assert needs.vxlan_mac[need] == bytes.fromhex("02aa00000001")
    assert needs.tunnels == {"gre": 1}


def test_frame_lists() -> None:
    assert parse_frame_list("1,4-6, 9") == frozenset({1, 4, 5, 6, 9})
    for bad in ("0", "5-3", "x", ",", "1-99999999"):
        with pytest.raises(ValueError):
            parse_frame_list(bad)


SNMP = """Ip: Forwarding DefaultTTL InReceives InHdrErrors ReasmFails
Ip: 2 64 10 1 0
Udp: InDatagrams NoPorts
Udp: 3 4
"""
NETSTAT = """IpExt: InNoRoutes InCsumErrors
IpExt: 0 2
"""
SNMP6 = "Ip6InReceives                   \t5\nIp6ReasmFails 1\n"


def test_mib_names_and_deltas() -> None:
    c = mib_counters(SNMP, NETSTAT, SNMP6)
    assert c == {
        "InReceives": 10,
        "InHdrErrors": 1,
        "ReasmFails": 0,
        "Udp.InDatagrams": 3,
        "Udp.NoPorts": 4,
        "InNoRoutes": 0,
        "InCsumErrors": 2,
        "Ip6InReceives": 5,
        "Ip6ReasmFails": 1,
    }
    after = dict(c, InReceives=11, ReasmFails=1)
    assert delta(c, after) == {"InReceives": 1, "ReasmFails": 1}


def _rtattr(atype: int, body: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(body), atype) + body
    return raw + bytes(-len(raw) % 4)


def test_netlink_link_stats() -> None:
    stats = list(range(1, len(LINK_STATS) + 1))
    attrs = _rtattr(3, b"lab1b\0") + _rtattr(23, struct.pack(f"={len(stats)}Q", *stats))
    body = struct.pack("=BBHiII", socket.AF_UNSPEC, 0, 1, 5, 0, 0) + attrs
    msg = struct.pack("=IHHII", 16 + len(body), 16, 2, 1, 0) + body
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + bytes(4)
    links, finished = parse_links(msg + done)
    assert finished
    assert links["lab1b"]["rx_dropped"] == 7
    assert links["lab1b"]["rx_nohandler"] == 24


def test_stale_namespaces_only_of_dead_owners(tmp_path: Path) -> None:
    (tmp_path / "100").mkdir()
    (tmp_path / "100" / "cmdline").write_bytes(b"python\0-m\0netsleuth\0lab\0")
    (tmp_path / "200").mkdir()  # alive but not netsleuth: its pid was reused
    (tmp_path / "200" / "cmdline").write_bytes(b"sleep\x0030\0")
    (tmp_path / "200" / "maps").write_text("7f00 r-xp /usr/lib/libc.so.6\n")
    (tmp_path / "300").mkdir()  # a test runner with netsleuth loaded
    (tmp_path / "300" / "cmdline").write_bytes(b"python\0-m\0pytest\0")
    (tmp_path / "300" / "maps").write_text("7f00 r-xp /x/netsleuth/sources/_ringbuf.so\n")
    names = [
        "netsleuth-100-a",
        "netsleuth-200-b",
        "netsleuth-300-a",
        "netsleuth-400-a",
        f"netsleuth-{os.getpid()}-a",
        "nsl-dc-a-400",
        "netsleuth-x-a",
    ]
    assert stale_namespaces(names, tmp_path) == ["netsleuth-200-b", "netsleuth-400-a"]


NAMES = Named(lambda a: f"f{a}", lambda a: f"f{a}+0x0", {3: "NO_SOCKET"}.get)


def test_verdict_drop_and_replies() -> None:
    skbs = Skbs("lab1a")
    events = [
        Event("rx", 0xA, device="lab1b"),
        Event("rx", 0xB, device="lab1a"),  # the ICMP error, in the sender
        Event("drop", 0xB, location=9, protocol=0x0800, reason=13),
        Event("drop", 0xA, location=5, protocol=0x0800, reason=3),
    ]
    r = judge(1, events, {"Udp.NoPorts": 1}, skbs, NAMES)
    assert (r.verdict, r.location, r.reason, r.protocol, r.replies) == (
        "dropped",
        "f5",
        "NO_SOCKET",
        0x0800,
        1,
    )


def test_verdict_reassembly_then_freed_by_a_later_frame() -> None:
    skbs = Skbs("lab1a")
    r1 = judge(1, [Event("rx", 0xA, device="lab1b")], {"ReasmReqds": 1}, skbs, NAMES)
    assert r1.verdict == "reassembly"
    events = [
        Event("rx", 0xC, device="lab1b"),
        Event("drop", 0xA, location=7, protocol=0x0800, reason=2),
        Event("drop", 0xC, location=7, protocol=0x0800, reason=2),
    ]
    r2 = judge(2, events, {"ReasmReqds": 1, "ReasmFails": 1}, skbs, NAMES)
    assert (r2.verdict, r2.freed_earlier) == ("dropped", [1])
    assert r2.notes == ["dropped frame 1's queued skb at f7"]


def test_verdict_delivered_forwarded_no_effect() -> None:
    skbs = Skbs("lab1a")
    rx = [Event("rx", 1, device="lab1b"), Event("consume", 1, location=3)]
    d = judge(1, rx, {"InDelivers": 1, "Udp.InDatagrams": 1}, skbs, NAMES)
    assert (d.verdict, d.consumed_at) == ("delivered", "f3")
    f = judge(2, [Event("rx", 2, device="lab1b")], {"ForwDatagrams": 1}, skbs, NAMES)
    assert f.verdict == "forwarded"
    n = judge(3, [Event("consume", 99, location=3)], {}, skbs, NAMES)
    assert (n.verdict, n.consumed_at) == ("no_effect", None)
    assert n.notes == ["it never reached the receiver's stack"]


def test_cli_lab_without_root_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cap = tmp_path / "x.pcap"
    cap.write_bytes(b"")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    res = invoke("lab", "replay", str(cap), code=3)
    assert "lab needs root" in res.err


def test_cli_lab_bad_arguments_exit_2(tmp_path: Path) -> None:
    cap = tmp_path / "x.pcap"
    cap.write_bytes(b"")
    for args in (["--listen", "sctp/9"], ["--frames", "0-2"]):
        res = invoke("lab", "replay", str(cap), *args, code=2)
        assert res.out == "" and res.err.startswith("netsleuth: --"), res.err


def test_vxlan_inner_destination_rewritten_and_checksum_cleared() -> None:
    from netsleuth.lab.frames import rewrite_inner_dst

    inner = ether(IP4, 0x0800, dst="02:aa:00:00:00:01")
    outer = ether(
        ipv4(
            "198.51.100.1",
            "198.51.100.2",
            udp("198.51.100.1", "198.51.100.2", 999, 4789, vxlan(inner, vni=42)),
            17,
        ),
        0x0800,
    )
    out = rewrite_inner_dst(outer, MAC)
    l4 = 14 + 20
    assert out[l4 + 6 : l4 + 8] == b"\x00\x00"  # UDP checksum zero: allowed over IPv4
    assert out[l4 + 16 : l4 + 22] == MAC
    assert out[l4 + 22 :] == inner[6:]
    assert len(out) == len(outer)
    plain = ether(IP4, 0x0800)
    assert rewrite_inner_dst(plain, MAC) == plain
