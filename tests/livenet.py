"""A quiet veth pair for the live-capture tests: two namespaces named with our pid, no
addresses and IPv6 off on both ends, so the kernel itself sends nothing (no ARP, no
router solicitation, no MLD) and the receiving end sees only what the test sends."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class Quiet:
    a: str  # sending namespace
    b: str  # receiving namespace
    a_if: str
    b_if: str
    raw: socket.socket  # AF_PACKET bound to a's end


def _disable_ipv6(ns: str) -> None:
    from pyroute2 import netns

    netns.pushns(ns)
    try:
        for conf in ("all", "default"):
            with open(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6", "w") as fh:
                fh.write("1")
    finally:
        netns.popns()


@contextlib.contextmanager
def quiet_pair(tag: str) -> Iterator[Quiet]:
    """Namespaces nsl-<tag>-a/b-<pid>, interfaces <tag><pid>a and <tag><pid>b."""
    from pyroute2 import NetNS, netns

    pid = os.getpid()
    a, b = f"nsl-{tag}-a-{pid}", f"nsl-{tag}-b-{pid}"
    a_if, b_if = f"{tag}{pid}a", f"{tag}{pid}b"
    assert len(a_if) <= 15, "IFNAMSIZ"
    netns.create(a)
    netns.create(b)
    raw = None
    try:
        _disable_ipv6(a)
        _disable_ipv6(b)
        with NetNS(a) as nsa:
            nsa.link("add", ifname=a_if, kind="veth", peer={"ifname": b_if, "net_ns_fd": b})
            nsa.link("set", index=nsa.link_lookup(ifname=a_if)[0], state="up", mtu=9000)
        with NetNS(b) as nsb:
            nsb.link("set", index=nsb.link_lookup(ifname=b_if)[0], state="up", mtu=9000)
        netns.pushns(a)
        try:
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
            raw.bind((a_if, 0))
        finally:
            netns.popns()
        yield Quiet(a, b, a_if, b_if, raw)
    finally:
        if raw is not None:
            raw.close()
        netns.remove(a)
        netns.remove(b)


NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))


def start_live(iface: str, *args: str, prefix: Sequence[str] = ()) -> subprocess.Popen[str]:
    """netsleuth scan --live IFACE ARGS (after `prefix`, e.g. `ip netns exec NS`), returned
    once it says its socket is reading."""
    p = subprocess.Popen(
        [*prefix, NETSLEUTH, "scan", "--live", iface, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stderr is not None
    line = p.stderr.readline()
    assert "reading" in line, line + p.stderr.read()
    return p


class Lines:
    """What a running netsleuth writes to a pipe, read line by line by a thread as it comes,
    so a test can wait for the line that says the run got somewhere (a file closed, frames
    read) instead of sleeping for a time a busy host may overrun, and still has every line
    at the end."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._ended = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:  # closed at its end: the test holds no pipe open after
            for line in stream:
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait_for(self, wanted: Callable[[str], bool], timeout: float = 60.0) -> str:
        """The first line `wanted` accepts, once it has come."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if wanted(line):
                        return line
                assert not self._ended, "the run ended without it: " + "".join(self.lines)
                left = deadline - time.monotonic()
                assert left > 0, f"not within {timeout} s: " + "".join(self.lines)
                self._cond.wait(left)

    def all(self, timeout: float = 60.0) -> list[str]:
        """Every line, once the stream has ended."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream never ended"
        return self.lines
