"""The builder's frames across a real kernel path: sent with AF_PACKET on one end of a veth
pair inside a fresh network namespace, received on the other end, written to a pcap and
scanned. Needs root (network namespaces, AF_PACKET); skipped with the reason otherwise."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.scan import scan
from tests.packetsock import enable_auxdata, recv_frame

ETH_P_ALL = 3

pytestmark = pytest.mark.privileged


@pytest.fixture
def veth_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace and AF_PACKET sockets")
    from pyroute2 import NetNS, netns

    name = f"netsleuth-test-{os.getpid()}"
    netns.create(name)
    socks: list[socket.socket] = []
    try:
        with NetNS(name) as ns:
            ns.link("add", ifname="nsl-a", kind="veth", peer={"ifname": "nsl-b"})
            for ifname in ("nsl-a", "nsl-b"):
                ns.link("set", index=ns.link_lookup(ifname=ifname)[0], state="up", mtu=1500)
        netns.pushns(name)
        try:
            for ifname in ("nsl-a", "nsl-b"):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.bind((ifname, 0))
                enable_auxdata(s)
                socks.append(s)
        finally:
            netns.popns()
        yield socks[0], socks[1]
    finally:
        for s in socks:
            s.close()
        netns.remove(name)
    assert name not in netns.listnetns()


def receive(rx: socket.socket, sent: list[bytes], timeout: float = 3.0) -> list[bytes]:
    """Frames that arrive, in order, keeping only those we sent (the kernel adds its own
    IPv6 neighbour discovery when the links come up)."""
    want = set(sent)
    got: list[bytes] = []
    rx.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < len(sent):
        try:
            frame = recv_frame(rx)
        except TimeoutError:
            continue
        if frame in want:
            got.append(frame)
    return got


def test_incident_frames_cross_a_veth_unchanged_and_scan_the_same(
    veth_pair: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    tx, rx = veth_pair
    frames = [f for _, f in incidents.incident1_poison_fragment(normal=5)]
    frames += [f for _, f in incidents.incident2_stp_llc(seconds=4)]
    for f in frames:
        tx.send(f)
    got = receive(rx, frames)
    # Byte-identical and in order: the 802.1Q tag restored from PACKET_AUXDATA (veth strips
    # it on receive), the 26 padding zeros of the empty fragment kept.
    assert got == frames
    path = tmp_path / "live.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(i * 1000, f) for i, f in enumerate(got)])
    summary = scan([str(path)]).summary.to_json()
    assert summary["tunnels"] == {"gre-teb": 7}
    assert summary["fragments"] == 2
    assert summary["l3"]["802.2-llc"] == 2
