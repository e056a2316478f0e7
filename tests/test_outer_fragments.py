"""Tunnels inside outer fragments: the first outer fragment holds a cut inner packet, which
is not malformed (RFC 4459 section 3); the outer datagram is reassembled and its inner
packet audited, so a poison inner packet split over outer fragments is still found.
Frames built here; tshark (which reassembles the outer datagram too) cross-checks them."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.capture.writer import write_pcap
from netsleuth.checks import collect, new_checks, observe_all
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.craft.encap import pppoe_session
from netsleuth.decode import decode
from netsleuth.findings import Severity
from tests.checkutil import findings

OS, OD = "203.0.113.1", "203.0.113.2"  # tunnel endpoints
IS, ID_ = "10.1.0.1", "10.1.0.2"  # inner hosts


def inner_frame(size: int = 1400) -> bytes:
    seg = craft.tcp(IS, ID_, 40000, 443, bytes(size - 40), flags="A")
    return craft.ether(craft.ipv4(IS, ID_, seg, 6, ident=99), 0x0800)


def outer_fragments(payload: bytes, proto: int, first: int = 1000) -> list[bytes]:
    parts = craft.fragment_ipv4(OS, OD, payload, proto, sizes=[first, 0], ident=4242)
    return [craft.ether(p, 0x0800) for p in parts]


CASES = {
    "gre-teb": lambda: outer_fragments(craft.gre(inner_frame(), 0x6558), 47),
    "erspan2": lambda: outer_fragments(
        craft.gre(craft.erspan2(inner_frame(), session=7), 0x88BE, seq=1), 47
    ),
    "vxlan": lambda: outer_fragments(
        craft.udp(OS, OD, 50000, 4789, craft.vxlan(inner_frame(), vni=10)), 17
    ),
    "ipip": lambda: outer_fragments(craft.ipv4(IS, ID_, bytes(1400), 17), 4),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_cut_inner_packet_is_not_malformed(kind: str) -> None:
    frames = CASES[kind]()
    got = findings(frames)
    worrying = {k: f.packets for k, f in got.items() if f.severity >= Severity.WARNING}
    assert worrying == {}
    # VXLAN too: decode stops at UDP in the first fragment (its length covers the whole
    # datagram), and the reassembled datagram shows the tunnel.
    assert got["tunnel.outer_fragmented/outer"].packets == (1, 2)
    assert got["tunnel.outer_fragmented/outer"].evidence["reassembled"] == [
        {"frame": 2, "frames": [1, 2]}
    ]
    assert set(got) == {"tunnel.outer_fragmented/outer"}


def test_a_really_short_inner_header_is_still_reported() -> None:
    bad = craft.ipv4(IS, ID_, b"", 59, total_length=10)  # shorter than its own header
    frames = outer_fragments(craft.gre(craft.ether(bad + bytes(1400), 0x0800), 0x6558), 47)
    got = findings(frames)
    # Judged in the reassembled datagram, attributed to the frame that completed it.
    assert got["ipv4.bad_total_length/inner"].packets == (2,)


def poison_pair() -> tuple[bytes, bytes]:
    """Incident 1: an inner fragment train whose second fragment has no payload."""
    seg = craft.tcp(IS, ID_, 40000, 443, bytes(1380), flags="A")
    first = craft.ipv4(IS, ID_, seg[:1400], 6, ident=7, flags=0x1)
    empty = craft.pad(craft.ether(craft.ipv4(IS, ID_, b"", 6, ident=7, frag_off=1400), 0x0800))
    return craft.ether(first, 0x0800), empty


def test_poison_inner_fragment_split_over_outer_fragments_is_found() -> None:
    first, empty = poison_pair()
    plain = craft.ether(craft.ipv4(OS, OD, craft.gre(first, 0x6558), 47, ident=1), 0x0800)
    # The zero-length fragment's GRE packet is split so that its inner IPv4 header spans
    # two outer fragments: no single frame shows it.
    split = outer_fragments(craft.gre(empty, 0x6558), 47, first=24)
    got = findings([plain, *split])
    zero = got["ipv4.fragment.zero_length/inner"]
    assert zero.packets == (3,)  # the frame that completed the outer datagram
    assert zero.evidence["reassembled"] == [{"frame": 3, "frames": [2, 3]}]
    # One inner train across a plain and a reassembled outer packet: complete, no
    # "incomplete" on either side.
    assert not any(k.startswith("ipv4.fragment.incomplete") for k in got)
    assert got["tunnel.outer_fragmented/outer"].packets == (2, 3)


def test_the_same_packet_unfragmented_is_reported_once_cut(tmp_path: Path) -> None:
    # Without outer fragmentation a short inner packet is malformed: the anomaly stays.
    g = craft.gre(inner_frame()[:600], 0x6558)
    got = findings([craft.ether(craft.ipv4(OS, OD, g, 47), 0x0800)])
    assert got["ipv4.bad_total_length/inner"].packets == (1,)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_sees_the_builds_as_we_do(tmp_path: Path) -> None:
    path = tmp_path / "f.pcap"
    frames = CASES["gre-teb"]()
    with open(path, "wb") as fh:
        write_pcap(fh, [(i, f) for i, f in enumerate(frames)])
    fields = ["-T", "fields", "-e", "ip.flags.mf", "-e", "ip.frag_offset"]
    out = subprocess.run(
        ["tshark", "-o", "ip.defragment:TRUE", "-r", str(path), *fields],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert out[0].split("\t")[:2] == ["1", "0"]
    # tshark reassembles the outer datagram in frame 2 and finds the inner IPv4 there.
    assert out[1].split("\t")[0] == "0,0"


def test_udp_tunnel_whose_first_fragment_arrives_last() -> None:
    first, empty = poison_pair()
    plain = craft.ether(
        craft.ipv4(OS, OD, craft.udp(OS, OD, 50000, 4789, craft.vxlan(first, vni=10)), 17), 0x0800
    )
    split = outer_fragments(craft.udp(OS, OD, 50000, 4789, craft.vxlan(empty, vni=10)), 17, 24)
    got = findings([plain, *split[::-1]])  # the outer first fragment last
    assert got["ipv4.fragment.zero_length/inner"].packets == (3,)
    assert not any(k.startswith("ipv4.fragment.incomplete") for k in got)
    # A UDP datagram that is no tunnel's, its first fragment last: dropped, nothing said.
    dns = outer_fragments(craft.udp(OS, OD, 53, 40000, bytes(1400)), 17, 512)
    assert findings(dns[::-1]) == {}


def test_a_udp_tunnel_run_held_before_its_first_fragment_is_rebuilt_whole() -> None:
    """Three fragments of one VXLAN datagram in a row in one batch, its first fragment in
    the next: the run goes into the held datagram at once (_extend), its bytes placed
    only when the first fragment comes, and every byte of it is in the rebuilt packet."""
    first, empty = poison_pair()
    plain = craft.ether(
        craft.ipv4(OS, OD, craft.udp(OS, OD, 50000, 4789, craft.vxlan(first, vni=10)), 17), 0x0800
    )
    vxlan = craft.udp(OS, OD, 50000, 4789, craft.vxlan(empty, vni=10))
    parts = craft.fragment_ipv4(OS, OD, vxlan, 17, sizes=[24, 16, 16, 0], ident=4242)
    split = [craft.ether(p, 0x0800) for p in parts]
    checks = new_checks()
    for lo, frames in ((0, [plain, *split[1:]]), (4, split[:1])):
        batch = RecordBatch.from_packets(frames, ts_ns=[lo + i for i in range(len(frames))])
        observe_all(checks, decode(dataclasses.replace(batch, frame=batch.frame + lo)))
    got = {f"{f.id}/{f.layer}": f for f in collect(checks)}
    zero = got["ipv4.fragment.zero_length/inner"]
    assert zero.packets == (5,)
    assert zero.evidence["reassembled"] == [{"frame": 5, "frames": [2, 3, 4, 5]}]
    assert not any(k.startswith("ipv4.fragment.incomplete") for k in got)


def test_link_header_with_a_length_field_does_not_hide_the_inner_packet() -> None:
    first, empty = poison_pair()

    def pppoe(ip: bytes) -> bytes:
        return craft.pad(craft.ether(pppoe_session(ip, 0x0021), 0x8864))

    plain = pppoe(craft.ipv4(OS, OD, craft.gre(first, 0x6558), 47, ident=1))
    parts = craft.fragment_ipv4(OS, OD, craft.gre(empty, 0x6558), 47, sizes=[24, 0], ident=9)
    got = findings([plain, *(pppoe(p) for p in parts)])
    assert got["ipv4.fragment.zero_length/inner"].packets == (3,)
    assert got["tunnel.outer_fragmented/outer"].packets == (2, 3)
    assert not any(k.startswith("ipv4.fragment.incomplete") for k in got)


def test_a_snapped_capture_is_not_rebuilt_from_cut_fragments() -> None:
    frames = CASES["gre-teb"]()
    wire = [len(f) for f in frames]
    got = findings([f[:128] for f in frames], wirelen=wire)
    assert got["capture.truncated_packet/None"].packets == (1, 2)
    assert not any(f.severity >= Severity.WARNING for f in got.values())


def test_zero_length_outer_fragments_are_charged_against_the_bound() -> None:
    from netsleuth.capture import RecordBatch
    from netsleuth.checks.outer_reassembly import TunnelReassembly
    from netsleuth.decode import decode

    empty = craft.ether(craft.ipv4(OS, OD, b"", 47, ident=5, flags=0x1, frag_off=8), 0x0800)
    r = TunnelReassembly()
    r.observe(decode(RecordBatch.from_packets([empty] * 2000)))
    assert len(r.open) == 1
    assert r.open.nbytes >= 2000 * 100  # each fragment costs, whatever its length


def test_a_fragmented_dns_reply_to_a_tunnel_port_is_no_tunnel() -> None:
    # The UDP decoder's rule (the lower port when bound or a system port): a reply from
    # port 53 to a client that happens to use 4789 is DNS, in order or not.
    reply = craft.udp(OS, OD, 53, 4789, craft.vxlan(inner_frame(), vni=10))
    frames = outer_fragments(reply, 17, 512)
    assert findings(frames) == {}
    assert findings(frames[::-1]) == {}


@pytest.mark.parametrize("batches", [1, 2])
def test_an_outer_datagram_older_than_30_s_is_not_rebuilt(batches: int) -> None:
    """Its second fragment 31 s after the first: the kernel's queue expired (ip_expire after
    ipfrag_time, 30 s) and the fragment starts a new one, so no packet is rebuilt, whether
    or not a batch ends between the two (the batch end before it saw only time 0)."""
    frames = CASES["gre-teb"]()
    stamps = [0, 31 * 10**9]
    checks = new_checks()
    cut = 1 if batches == 2 else len(frames)
    for lo, hi in ((0, cut), (cut, len(frames))):
        if lo < hi:
            batch = RecordBatch.from_packets(frames[lo:hi], ts_ns=stamps[lo:hi])
            observe_all(checks, decode(dataclasses.replace(batch, frame=batch.frame + lo)))
    got = {f"{f.id}/{f.layer}": f.packets for f in collect(checks)}
    # Two datagrams of one fragment each, both never completed; nothing rebuilt.
    assert got == {"ipv4.fragment.incomplete/outer": (1, 2)}


def test_merged_reassemblies_list_their_evidence_in_frame_order() -> None:
    """Live fanout workers each rebuild some datagrams (live/run.py merges them): the
    evidence is in frame order whichever part is merged into which."""
    parts = []
    for first in (11, 1):
        r = TunnelReassembly()
        batch = RecordBatch.from_packets(CASES["gre-teb"]())
        r.observe(decode(dataclasses.replace(batch, frame=batch.frame + first - 1)))
        r.finish()
        parts.append(r)
    parts[0].merge_disjoint(parts[1])
    assert [e["frame"] for e in parts[0].evidence] == [2, 12]


def vxlan_datagrams(n: int, *, complete: bool) -> list[bytes]:
    """n VXLAN datagrams in two outer fragments each (ids 0..n-1), one after the other;
    only their first fragments when not `complete`."""
    frames = []
    for ident in range(n):
        payload = craft.udp(OS, OD, 50000, 4789, craft.vxlan(inner_frame(), vni=10))
        parts = craft.fragment_ipv4(OS, OD, payload, 17, sizes=[1000, 0], ident=ident)
        frames += [craft.ether(p, 0x0800) for p in parts[: 2 if complete else 1]]
    return frames


def test_many_datagrams_in_one_batch_are_all_rebuilt() -> None:
    """More datagrams than the bound holds (1024) in one batch, each complete before the
    next starts: none is dropped. A cap on one batch's new datagrams called the 1025th
    and later bounded (and never checked their inner packets)."""
    got = findings(vxlan_datagrams(1500, complete=True))
    assert set(got) == {"tunnel.outer_fragmented/outer"}
    assert got["tunnel.outer_fragmented/outer"].count == 3000


def test_the_bound_drops_the_oldest_datagrams() -> None:
    """1500 first fragments that never complete: the 476 oldest are dropped as the bound
    (1024 open) is reached, and reported; the rest end with the input."""
    got = findings(vxlan_datagrams(1500, complete=False))
    bounded = got["tunnel.reassembly_bounded/outer"]
    assert bounded.count == 476
    assert bounded.packets[:3] == (1, 2, 3)


def test_ports_are_not_read_from_the_frame_padding() -> None:
    """A UDP first fragment with 2 bytes of payload, padded to 60 bytes with bytes that
    read as ports 4789 (VXLAN): it shows no ports, so it is no tunnel's first fragment. A
    whole first fragment with the same ports is one."""
    payload = craft.udp(OS, OD, 4789, 4789, craft.vxlan(inner_frame(), vni=10))
    short = craft.ipv4(OS, OD, payload[:2], 17, ident=77, flags=0x1)
    padded = craft.ether(short, 0x0800) + bytes.fromhex("12b512b5") + bytes(20)
    whole = craft.ether(craft.ipv4(OS, OD, payload[:1000], 17, ident=78, flags=0x1), 0x0800)
    t = decode(RecordBatch.from_packets([padded, whole]))
    assert TunnelReassembly()._tunnel_ports(t).tolist() == [False, True]


def split_inner(k: int) -> list[bytes]:
    """One inner UDP datagram over VXLAN through a small MTU as Linux sends it (VXLAN MTU
    100 over an underlay of 128, captured on the underlay): the inner datagram is
    fragmented, its first fragment's VXLAN packet fragmented again (two outer fragments),
    its last fragment's VXLAN packet whole."""
    inner = craft.fragment_ipv4(
        IS, ID_, craft.udp(IS, ID_, 5000, 6000, bytes(100)), 17, sizes=[80, 0], ident=k
    )
    vx = [
        craft.udp(OS, OD, 50000, 4789, craft.vxlan(craft.ether(f, 0x0800), vni=42)) for f in inner
    ]
    first = craft.fragment_ipv4(OS, OD, vx[0], 17, sizes=[104, 0], ident=2 * k)
    last = craft.ipv4(OS, OD, vx[1], 17, ident=2 * k + 1)
    return [craft.ether(p, 0x0800) for p in (*first, last)]


def test_an_inner_datagram_split_between_whole_and_fragmented_outer_packets_completes() -> None:
    """The inner fragments reach the audit in frame order: the rebuilt packet (its first
    fragment) at the frame that completed its outer datagram, before the whole packet
    after it (its last). Fed one table after the other, every last fragment came first:
    past 4096 such datagrams in a batch the table evicted them, and their first fragments
    opened new ones, reported evicted and incomplete (helper-30, real kernel traffic)."""
    n = 5000
    got = findings([f for k in range(n) for f in split_inner(k)])
    assert set(got) == {"tunnel.outer_fragmented/outer"}
    assert got["tunnel.outer_fragmented/outer"].count == 2 * n


def test_inner_ids_recurring_after_their_datagrams_completed_are_no_duplicates() -> None:
    """The same traffic twice (a capture appended to itself): each inner datagram completes
    before its id recurs, so the second is a new datagram, not a duplicate."""
    frames = [f for k in range(300) for f in split_inner(k)]
    got = findings(frames + frames)
    assert set(got) == {"tunnel.outer_fragmented/outer"}
