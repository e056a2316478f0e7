"""`dumpcap -i any` on a host whose address is on a bridge (a container or VM host): the real
kernel hands each received packet to the capture twice, from the bridge port and from the
bridge (fragments with one timestamp, TCP segments with two, microseconds apart). scan
takes each datagram once (no duplicate, too many or incomplete fragments; the copies
counted as capture.device_copies) and steer models each packet once (the copies counted).
tshark, reassembly off, says which frames repeat one shortly before (every IP and
transport field the same)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.clirun import invoke
from tests.netns import Pair, veth_pair
from tests.systools import dumpcap_in, stop_dumpcap, wait_for_frames

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.79.0.1", "10.79.0.2"
DATAGRAMS = 12
SIZE = 3000  # three fragments at the veth's 1500-byte MTU


def repeats(tshark: str, path: Path, where: str) -> tuple[int, int]:
    """(received frames `where` picks, how many repeat one of the 32 frames before within
    a millisecond: every IP and transport field tshark shows the same)."""
    fields = [
        "frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ip.id", "ip.checksum",
        "ip.len", "ip.frag_offset", "ipv6.src", "ipv6.dst", "ipv6.plen", "tcp.seq_raw",
        "tcp.checksum", "udp.checksum", "icmpv6.checksum", "icmp.checksum", "arp.opcode",
        "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4",
    ]  # fmt: skip
    argv = [tshark, "-n", "-o", "ip.defragment:FALSE", "-r", str(path)]
    argv += ["-Y", f"sll.pkttype != 4 and ({where})"]
    argv += ["-T", "fields", *[a for f in fields for a in ("-e", f)]]
    rows = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    last: dict[str, tuple[int, float]] = {}
    copies = 0
    for row in rows:
        frame, when, *rest = row.split("\t")
        key, now = "\t".join(rest), (int(frame), float(when))
        seen = last.get(key)
        copies += seen is not None and now[0] - seen[0] <= 32 and now[1] - seen[1] <= 1e-3
        last[key] = now
    return len(rows), copies


def tcp_exchange(pair: Pair) -> None:
    """A TCP connection from namespace a to b: its packets' copies are delivered with
    timestamps of their own, microseconds apart."""
    from pyroute2 import netns

    netns.pushns(pair.b)
    try:
        server = socket.create_server((B_IP, 8080))
    finally:
        netns.popns()
    netns.pushns(pair.a)
    try:
        client = socket.create_connection((B_IP, 8080), timeout=5)
    finally:
        netns.popns()
    with server, client:
        conn, _ = server.accept()
        with conn:
            client.sendall(bytes(20_000))
            got = 0
            while got < 20_000:
                got += len(conn.recv(65536))
            conn.sendall(b"done")
            assert client.recv(16) == b"done"


def forget_b(pair: Pair) -> None:
    """Remove b's address from a's neighbour table (veth_pair resolved it before the
    capture), so the first datagram's address resolution is captured: the ARP copies the
    test checks. Before, the capture saw it only because the bridge port lost the
    warm-up's first ARP request and a's retry a second later came after the capture began."""
    from pyroute2 import NetNS

    with NetNS(pair.a) as ns:
        ns.neigh("del", dst=B_IP, ifindex=ns.link_lookup(ifname=pair.a_if)[0])


@pytest.mark.parametrize("linktype", ["LINUX_SLL", "LINUX_SLL2"])
def test_packets_received_through_a_bridge(tmp_path: Path, tshark: str, linktype: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, a bridge and dumpcap")
    path = tmp_path / "any.pcapng"
    with veth_pair("dc", A_IP, B_IP, bridge=True) as pair:
        proc = dumpcap_in(pair.b, ["-i", "any", "-y", linktype], path)
        try:
            forget_b(pair)
            for k in range(DATAGRAMS):
                pair.udp.sendto(bytes([k]) * SIZE, (B_IP, 9999))
            tcp_exchange(pair)
            # The last frame b receives is a's FIN (or RST), from the port and from the
            # bridge: once both are in the file, so is everything before them (one socket's
            # ring, written in order).
            end = "(tcp.flags.fin == 1 or tcp.flags.reset == 1)"
            wait_for_frames(tshark, path, f"sll.pkttype != 4 and ip.src == {A_IP} and {end}", 2)
        finally:
            stop_dumpcap(proc)
    fragments, copied = repeats(tshark, path, "ip.flags.mf == 1 or ip.frag_offset > 0")
    assert fragments == 2 * 3 * DATAGRAMS and copied == 3 * DATAGRAMS  # port, then bridge
    _, copies = repeats(tshark, path, "ip or ipv6 or arp")
    _, arp_copies = repeats(tshark, path, "arp")  # the first datagram's address resolution
    assert arp_copies >= 1
    tcp, tcp_copies = repeats(tshark, path, "tcp")
    # Every TCP packet too, its copy timestamped anew. At least a's SYN, handshake ACK, two
    # data segments (20,000 bytes are more than the initial window of ten) and FIN: more
    # segments depend on the GSO size the kernel picks from the measured RTT (16 or more
    # came only when the handshake waited on an address resolution).
    assert 2 * tcp_copies == tcp >= 10

    doc = invoke("scan", "--format", "json", str(path)).json()  # exit 0: info findings only
    found = {f["id"]: f["count"] for f in doc["findings"]}
    assert found.get("capture.device_copies") == copied
    assert [fid for fid in found if fid.startswith("ipv4.fragment.")] == []

    received, _ = repeats(tshark, path, "frame")  # non-IP frames too (ARP): modelled once
    doc = invoke("steer", "--format", "json", "--queues", "4", str(path)).json()
    assert doc["copies"]["packets"] == copies
    assert sum(q["packets"] for q in doc["rss"]["queues"]) == received - copies
