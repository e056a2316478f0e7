"""`tcpdump -i any` on a host that answers what it receives: the real kernel writes each
request as received (PACKET_HOST) and each reply as sent (PACKET_OUTGOING) in one Linux
cooked capture, and `steer` models the requests alone, saying how many replies it left out.
tshark says which frames the kernel marked as sent."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.clirun import invoke
from tests.netns import veth_pair
from tests.systools import dumpcap_in, stop_dumpcap, wait_for_frames

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.78.0.1", "10.78.0.2"
PORT = 7000
REQUESTS = 40


def echo(ns: str, stop: threading.Event) -> tuple[socket.socket, threading.Thread]:
    """A UDP socket in namespace `ns` that sends every datagram back, until `stop`."""
    from pyroute2 import netns

    netns.pushns(ns)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    finally:
        netns.popns()
    s.bind((B_IP, PORT))
    s.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = s.recvfrom(2048)
            except TimeoutError:
                continue
            s.sendto(data, peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return s, t


def tshark_count(tshark: str, path: Path, where: str) -> tuple[int, int]:
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-Y", where, "-T", "fields", "-e", "frame.len"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return len(out), sum(map(int, out))


def test_an_any_capture_s_replies_are_left_out(tmp_path: Path, tshark: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and dumpcap")
    path = tmp_path / "any.pcap"
    stop = threading.Event()
    with veth_pair("sd", A_IP, B_IP) as pair:
        sock, server = echo(pair.b, stop)
        try:
            proc = dumpcap_in(pair.b, ["-i", "any", "-y", "LINUX_SLL", "-P"], path)
            try:
                for k in range(REQUESTS):
                    pair.udp.sendto(bytes(100 + k), (B_IP, PORT))
                    pair.udp.recv(2048)  # the echo: both ways are on the wire
                # Every echo in the file, the last one sent last, before dumpcap stops.
                echoes = f"sll.pkttype == 4 and udp.srcport == {PORT}"
                wait_for_frames(tshark, path, echoes, REQUESTS)
            finally:
                stop_dumpcap(proc)
        finally:
            stop.set()
            server.join(5)
            sock.close()
    total, _ = tshark_count(tshark, path, "frame")
    sent, sent_bytes = tshark_count(tshark, path, "sll.pkttype == 4")
    replies, _ = tshark_count(tshark, path, f"sll.pkttype == 4 and udp.srcport == {PORT}")
    assert replies == REQUESTS  # the kernel marked every echo as sent by this host

    doc = invoke("steer", "--format", "json", "--queues", "4", str(path)).json()
    assert doc["sent"] == {"packets": sent, "bytes": sent_bytes}
    assert sum(q["packets"] for q in doc["rss"]["queues"]) == total - sent
