"""The TPACKET_V3 ring reader on the real kernel: frames sent across a veth pair between
two network namespaces come back byte for byte (the 802.1Q tag the receive path strips
into tp_vlan_tci restored), the kernel's drop counter is read when the ring overflows, and
PACKET_FANOUT_HASH keeps every fragment of one IPv4 datagram on one socket. Needs root."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsleuth.capture.batch import PAD, RecordBatch
from netsleuth.capture.ring import RingConfig, RingReader
from netsleuth.craft.l2 import dot1q, ether
from netsleuth.craft.l3 import fragment_ipv4, ipv4
from netsleuth.craft.tunnel import gre
from netsleuth.errors import InputError
from tests.netns import Pair, veth_pair

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.198.0.1", "10.198.0.2"
LOCAL_EXP = 0x88B5  # IEEE 802 local experimental EtherType: nothing on the host sends it
SMALL = RingConfig(block_size=1 << 16, blocks=4, retire_ms=5)


@pytest.fixture
def pair() -> Iterator[Pair]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and AF_PACKET")
    with veth_pair(f"r{os.getpid() % 100000}", A_IP, B_IP) as p:
        yield p


def reader_in(ns: str, ifname: str, config: RingConfig) -> RingReader:
    from pyroute2 import netns

    netns.pushns(ns)
    try:
        return RingReader(ifname, config)
    finally:
        netns.popns()


def drain(reader: RingReader, want: int, seconds: float = 3.0) -> list[RecordBatch]:
    got: list[RecordBatch] = []
    end = time.monotonic() + seconds
    n = 0

    def stop() -> bool:
        return n >= want or time.monotonic() > end

    for batch in reader.batches(stop, timeout_ms=20):
        got.append(batch)
        n += len(batch)
    return got


def ours(batches: list[RecordBatch]) -> list[bytes]:
    """Frames whose (innermost) EtherType is the experimental one: not the host's ARP."""
    out = []
    for b in batches:
        for i in range(len(b)):
            f = b.packet(i)
            if f[12:14] == LOCAL_EXP.to_bytes(2) or f[16:18] == LOCAL_EXP.to_bytes(2):
                out.append(f)
    return out


def test_frames_come_back_with_vlan_tags_and_timestamps(pair: Pair) -> None:
    frames = [ether(bytes([i]) * (60 + i), LOCAL_EXP) for i in range(5)]
    frames.append(ether(dot1q(b"tagged" * 10, LOCAL_EXP, vid=10, pcp=5), 0x8100))
    with reader_in(pair.b, pair.b_if, SMALL) as r:
        before = time.time_ns()
        for f in frames:
            pair.raw.send(f)
        batches = drain(r, len(frames))
        got = ours(batches)
        assert got == frames  # 802.1Q tag (VID 10, PCP 5) back between MACs and EtherType
        ts = [int(t) for b in batches for t in b.ts_ns]
        assert all(before - 10**9 < t < time.time_ns() + 10**9 for t in ts)
        assert [int(x) for b in batches for x in b.frame] == list(range(1, r.frames + 1))
        for b in batches:  # the buffer is not zeroed first: all after the frames must be
            end = int(b.offset[-1] + b.caplen[-1])
            assert b.buf.shape[0] - end >= PAD and not b.buf[end:].any()
        st = r.read_stats()
        assert st.drops == 0 and st.packets >= len(frames)
        assert directions(batches) == [1] * len(frames)  # received: inbound


def directions(batches: list[RecordBatch]) -> list[int]:
    """The direction of each of our frames (ours()), as RecordBatch.direction gives it."""
    out = []
    for b in batches:
        assert b.direction is not None
        for i in range(len(b)):
            f = b.packet(i)
            if f[12:14] == LOCAL_EXP.to_bytes(2) or f[16:18] == LOCAL_EXP.to_bytes(2):
                out.append(int(b.direction[i]))
    return out


def test_what_the_host_sends_is_outbound(pair: Pair) -> None:
    """A ring on the sending end sees the frames leave (sll_pkttype PACKET_OUTGOING): the
    batch says outbound, as pcapng's epb_flags would."""
    frames = [ether(bytes([i]) * 64, LOCAL_EXP) for i in range(4)]
    with reader_in(pair.a, pair.a_if, SMALL) as r:
        for f in frames:
            pair.raw.send(f)
        batches = drain(r, len(frames))
        assert ours(batches) == frames
        assert directions(batches) == [2] * len(frames)


def test_overflow_is_counted_as_kernel_drops(pair: Pair) -> None:
    frame = ether(b"\0" * 1400, LOCAL_EXP)
    with reader_in(pair.b, pair.b_if, RingConfig(block_size=4096, blocks=2, retire_ms=5)) as r:
        for _ in range(200):  # 2 blocks of 4 KiB hold a handful of 1.4 kB frames
            pair.raw.send(frame)
        # Until the kernel has counted all 200 at the socket: the veth hands them to b's
        # stack in a softirq after send() returns, which a busy host may run late. Each
        # read resets the kernel's counts; r.totals sums them.
        deadline = time.monotonic() + 30
        while r.totals.packets < 200 and time.monotonic() < deadline:
            r.read_stats()
            time.sleep(0.02)
        assert r.totals.drops > 0
        assert r.totals.packets >= 200  # the kernel counts the dropped ones in tp_packets too


@pytest.mark.parametrize("tunnel", [False, True])
def test_fanout_hash_keeps_fragments_of_a_datagram_together(pair: Pair, tunnel: bool) -> None:
    """Fragments carry no ports after the first, so a hash over ports would split trains:
    the kernel's flow dissector hashes every fragment (the first included) on addresses
    and protocol only (commit 62230715fd24), and the two sockets each get whole trains.
    Inside GRE-TEB between one pair of outer addresses the trains still spread over both
    sockets: the dissector goes into the tunnel and hashes the inner addresses."""
    cfg = RingConfig(block_size=1 << 16, blocks=8, retire_ms=5, fanout_group=os.getpid() & 0xFFFF)
    src_at = 14 + 20 + 4 + 14 + 12 if tunnel else 14 + 12
    with reader_in(pair.b, pair.b_if, cfg) as r1, reader_in(pair.b, pair.b_if, cfg) as r2:
        sent = 0
        for d in range(40):
            src = f"10.77.{d}.1"
            for frag in fragment_ipv4(
                src, "10.78.0.1", bytes(64) + bytes([d]) * 200, 17, sizes=[64, 64, 64], ident=d + 1
            ):
                f = ether(frag, 0x0800)
                if tunnel:
                    f = ether(ipv4("192.0.2.1", "192.0.2.2", gre(f, 0x6558), 47), 0x0800)
                pair.raw.send(f)
                sent += 1
        got = [drain(r1, sent, 1.0), drain(r2, sent, 1.0)]
        seen: dict[int, set[int]] = {}
        for w, batches in enumerate(got):
            for b in batches:
                for i in range(len(b)):
                    f = b.packet(i)
                    if f[src_at : src_at + 2] == bytes([10, 77]):
                        seen.setdefault(f[src_at + 2], set()).add(w)
        assert len(seen) == 40
        assert all(len(ws) == 1 for ws in seen.values())  # no train split
        assert {w for ws in seen.values() for w in ws} == {0, 1}  # both sockets used


def test_no_such_interface_is_input_error() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: AF_PACKET")
    with pytest.raises(InputError, match="no such network interface"):
        RingReader("nsl-absent0")


def _open_fds_and_socket_maps() -> tuple[int, int]:
    maps = Path("/proc/self/maps").read_text()
    return len(os.listdir("/proc/self/fd")), maps.count("socket:")


def test_promisc_membership_and_ring_are_released(pair: Pair) -> None:
    """PACKET_ADD_MEMBERSHIP puts the device in promiscuous mode while the reader lives;
    closing drops it, unmaps the ring and closes the socket (also when the set-up fails)."""
    from pyroute2 import NetNS

    def promisc() -> bool:
        with NetNS(pair.b) as ns:
            link = ns.get_links(ns.link_lookup(ifname=pair.b_if)[0])[0]
            # The promiscuity count (IFLA_PROMISCUITY): socket memberships raise it but
            # not the IFF_PROMISC flag netlink reports (dev_get_flags shows gflags only).
            return bool(link.get_attr("IFLA_PROMISCUITY"))

    before = _open_fds_and_socket_maps()
    assert not promisc()
    with reader_in(pair.b, pair.b_if, RingConfig(1 << 16, 4, 5, promisc=True)) as r:
        assert promisc()
        assert _open_fds_and_socket_maps() != before
        r.read_stats()
    assert not promisc()
    assert _open_fds_and_socket_maps() == before
    bad = RingConfig(1 << 16, 4, 5, bpf=[(0xFFFF, 0, 0, 0)])  # an opcode the kernel refuses
    with pytest.raises(InputError, match="refused the BPF program"):
        reader_in(pair.b, pair.b_if, bad)
    assert _open_fds_and_socket_maps() == before


def test_a_zero_checksum_a_linux_host_sent_is_bad_not_offload(pair: Pair) -> None:
    """Linux fills the IPv4 header checksum in software before its packet sockets see a
    packet (ip_send_check): a zero the ring shows leaving was sent so, whatever the
    direction says. The same frame in a pcap file, whose capture point nobody says, is
    the offload finding."""
    from netsleuth.checks.ipv4_checksum import IPv4Checksum
    from netsleuth.decode import decode

    udp = b"\x13\x88\x00\x09\x00\x0c\x00\x00abcd"
    zero = ether(ipv4(A_IP, B_IP, udp, 17, checksum=0), 0x0800)
    with reader_in(pair.a, pair.a_if, SMALL) as r:
        pair.raw.send(zero)
        batches = [b for b in drain(r, 1) if len(b)]
    mine = [b for b in batches if any(b.packet(i) == zero for i in range(len(b)))]
    assert mine and all(b.linux is not None and b.linux.all() for b in mine)
    check = IPv4Checksum()
    for b in mine:
        check.observe(decode(b))
    assert {f.id for f in check.findings()} == {"ipv4.bad_checksum"}
    alone = RecordBatch.from_packets([zero])
    check = IPv4Checksum()
    check.observe(decode(alone))
    assert {f.id for f in check.findings()} == {"ipv4.checksum_offload"}
