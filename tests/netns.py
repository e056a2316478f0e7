"""Two network namespaces joined by a veth pair, for the tests that need the real kernel
path (drops, doctor): addresses on both ends, a UDP socket and an AF_PACKET socket in the
sending namespace, ARP resolved before the test starts, everything removed afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netsleuth.craft import incidents

WARM_UP_PORT = 9  # discard: closed in a fresh namespace


@dataclass
class Pair:
    a: str  # sending namespace
    b: str  # receiving namespace
    a_if: str
    b_if: str
    b_mac: bytes
    udp: socket.socket  # in namespace a
    raw: socket.socket  # AF_PACKET bound to a's end of the veth


@contextlib.contextmanager
def veth_pair(tag: str, a_ip: str, b_ip: str, *, bridge: bool = False) -> Iterator[Pair]:
    """Namespaces nsl-<tag>-a/b-<pid>, interfaces <tag>a and <tag>b (/24 addresses).
    `bridge`: <tag>b is a port of a bridge <tag>br in namespace b, which has b's address
    (a container or VM host's receive path: b_if's MAC is then the bridge's)."""
    from pyroute2 import NetNS, netns

    a, b = f"nsl-{tag}-a-{os.getpid()}", f"nsl-{tag}-b-{os.getpid()}"
    a_if, b_if = f"{tag}a", f"{tag}b"
    netns.create(a)
    netns.create(b)
    socks: list[socket.socket] = []
    try:
        with NetNS(a) as nsa:
            nsa.link("add", ifname=a_if, kind="veth", peer={"ifname": b_if, "net_ns_fd": b})
            idx = nsa.link_lookup(ifname=a_if)[0]
            nsa.addr("add", index=idx, address=a_ip, prefixlen=24)
            nsa.link("set", index=idx, state="up")
            nsa.link("set", index=nsa.link_lookup(ifname="lo")[0], state="up")
        with NetNS(b) as nsb:
            idx = nsb.link_lookup(ifname=b_if)[0]
            nsb.link("set", index=idx, state="up")
            if bridge:
                nsb.link("add", ifname=f"{tag}br", kind="bridge")
                br = nsb.link_lookup(ifname=f"{tag}br")[0]
                nsb.link("set", index=idx, master=br)
                nsb.link("set", index=br, state="up")
                idx = br
            nsb.addr("add", index=idx, address=b_ip, prefixlen=24)
            mac = nsb.get_links(idx)[0].get_attr("IFLA_ADDRESS")
        netns.pushns(a)
        try:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
            raw.bind((a_if, 0))
            socks += [udp, raw]
        finally:
            netns.popns()
        # Resolve ARP before the test, so its first datagrams are not queued.
        udp.sendto(b"warm-up", (b_ip, WARM_UP_PORT))
        wait_for_neighbour(a, b_ip)
        yield Pair(a, b, a_if, b_if, bytes.fromhex(mac.replace(":", "")), udp, raw)
    finally:
        for s in socks:
            s.close()
        netns.remove(a)
        netns.remove(b)


# Neighbour states with a link-layer address (NUD_VALID in include/net/neighbour.h):
# REACHABLE, PROBE, STALE, DELAY, NOARP, PERMANENT.
NUD_VALID = 0x02 | 0x10 | 0x04 | 0x08 | 0x40 | 0x80


def wait_for_neighbour(ns: str, ip: str, timeout: float = 30.0) -> None:
    """Until namespace `ns` has resolved `ip`'s link-layer address (its ARP reply came),
    polled rather than slept for: a busy host can take longer than any fixed pause."""
    from pyroute2 import NetNS

    deadline = time.monotonic() + timeout
    with NetNS(ns) as nsx:
        while not any(n["state"] & NUD_VALID for n in nsx.get_neighbours(dst=ip)):
            assert time.monotonic() < deadline, f"{ns} never resolved {ip}"
            time.sleep(0.02)


def udp_no_ports(ns: str) -> int:
    """Namespace `ns`'s UDP NoPorts counter (its /proc/net/snmp): the datagrams its stack
    received for a port nobody listens on. __udp4_lib_rcv counts each one just before it
    frees it as the NO_SOCKET drop, in the same softirq."""
    from pyroute2 import netns

    netns.pushns(ns)
    try:  # thread-self: this thread's namespace, the one pushns entered
        rows = Path("/proc/thread-self/net/snmp").read_text().splitlines()
    finally:
        netns.popns()
    names, values = (r.split() for r in rows if r.startswith("Udp:"))
    return int(values[names.index("NoPorts")])


def wait_for_no_ports(ns: str, count: int, timeout: float = 30.0) -> None:
    """Until namespace `ns`'s UDP NoPorts counter reaches `count`: the datagrams sent to a
    closed port there have been received and dropped. A veth hands them to the receiving
    stack after sendto() returns (its backlog, a softirq that a busy host may run late),
    so this is polled rather than slept for."""
    deadline = time.monotonic() + timeout
    while (n := udp_no_ports(ns)) < count:
        assert time.monotonic() < deadline, f"{ns} counted {n} of {count} NoPorts datagrams"
        time.sleep(0.02)


def bpdus(seconds: int) -> list[bytes]:
    """The 802.3/LLC spanning-tree frames of incident 2 (one per 2 s), without the TCP."""
    return [f for _, f in incidents.incident2_stp_llc(seconds) if int.from_bytes(f[12:14]) < 0x600]
