"""The kernel fragments a UDP datagram that crosses a bridge; dumpcap captures it on both
bridge ports (pcapng, one interface each) and on `any` (Linux cooked, v1 and v2): every
fragment is in each capture twice, arriving on one port and leaving by the other, and
netsleuth reports no fragment finding. On `any` one socket sees each fragment twice in a
row, and before fragment keys held where a packet was seen that was duplicates on every
fragment and an incomplete datagram (the two cooked cases fail without it); dumpcap writes
two ports' packets in per-interface runs, so there each datagram completed before its
second sighting began. tshark says the captures hold what the test needs: both fragments of
the datagram, seen twice, at two points."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsleuth.report.jsonout import scan_document
from netsleuth.scan import scan
from tests.netns import wait_for_neighbour
from tests.systools import dumpcap_in, stop_dumpcap, wait_for_frames

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.77.0.1", "10.77.0.2"
PAYLOAD = 2000  # bytes: two fragments on a 1500-byte MTU
PORT = 9  # discard: nothing listens, the datagram is still bridged


@contextlib.contextmanager
def bridged() -> Iterator[tuple[str, str]]:
    """Namespaces a and b, each with one end of a veth pair whose other end is a port of a
    bridge in namespace r. Yields (a, r)."""
    from pyroute2 import NetNS, netns

    tag = os.getpid()
    a, b, r = (f"nsl-pt-{x}-{tag}" for x in "abr")
    for name in (a, b, r):
        netns.create(name)
    try:
        with NetNS(r) as ns:
            ns.link("add", ifname="br0", kind="bridge")
            br = ns.link_lookup(ifname="br0")[0]
            for port, end, peer_ns in (("pa", "a", a), ("pb", "b", b)):
                ns.link("add", ifname=port, kind="veth", peer={"ifname": end, "net_ns_fd": peer_ns})
                idx = ns.link_lookup(ifname=port)[0]
                ns.link("set", index=idx, master=br, state="up")
            ns.link("set", index=br, state="up")
        for name, ifname, ip in ((a, "a", A_IP), (b, "b", B_IP)):
            with NetNS(name) as ns:
                idx = ns.link_lookup(ifname=ifname)[0]
                ns.addr("add", index=idx, address=ip, prefixlen=24)
                ns.link("set", index=idx, state="up")
        yield a, r
    finally:
        for name in (a, b, r):
            with contextlib.suppress(OSError):
                netns.remove(name)


def send(ns: str) -> None:
    from pyroute2 import netns

    netns.pushns(ns)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    finally:
        netns.popns()
    with s:
        s.sendto(b"warm-up", (B_IP, PORT))  # ARP resolved before the datagram that counts
        wait_for_neighbour(ns, B_IP)
        s.sendto(bytes(PAYLOAD), (B_IP, PORT))


FRAGMENTS = f"ip.id and ip.dst == {B_IP} and (ip.flags.mf == 1 or ip.frag_offset > 0)"


def sightings(tshark: str, path: Path, point: str) -> list[tuple[str, str]]:
    """(where, fragment offset) of every fragment of the datagram, as tshark reads them."""
    out = subprocess.run(
        [
            *(tshark, "-r", str(path), "-o", "ip.defragment:FALSE", "-Y", FRAGMENTS),
            *("-T", "fields", "-e", point, "-e", "ip.frag_offset"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(tuple(line.split("\t")) for line in out.splitlines())  # type: ignore[misc]


def fragment_findings(path: Path) -> dict[str, int]:
    doc = scan_document(scan([str(path)]))
    return {f["id"]: f["count"] for f in doc["findings"] if "fragment" in f["id"]}


@pytest.mark.parametrize(
    ("args", "point", "where"),
    [
        (["-i", "pa", "-i", "pb"], "frame.interface_id", ["0", "1"]),
        (["-i", "any", "-y", "LINUX_SLL"], "sll.pkttype", ["3", "4"]),
        (["-i", "any", "-y", "LINUX_SLL2"], "sll.pkttype", ["3", "4"]),
    ],
    ids=["two-ports", "any-sll", "any-sll2"],
)
def test_a_bridged_datagram_seen_twice_is_no_duplicate(
    tmp_path: Path, tshark: str, args: list[str], point: str, where: list[str]
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, a bridge and dumpcap")
    path = tmp_path / "bridge.pcapng"
    with bridged() as (a, r):
        proc = dumpcap_in(r, args, path)
        try:
            send(a)
            # Both fragments at both points in the file before dumpcap stops.
            wait_for_frames(tshark, path, FRAGMENTS, 2 * len(where))
        finally:
            stop_dumpcap(proc)
    # Both fragments (offsets 0 and 1480 bytes: tshark 4 gives the field in 8-byte units),
    # once per point: on each port, or otherhost as it arrives on one port and outgoing as
    # it leaves by the other.
    seen = sightings(tshark, path, point)
    assert seen == sorted((w, off) for w in where for off in ("0", str(1480 // 8))), seen
    assert fragment_findings(path) == {}
