"""`scan --live` on an interface without Ethernet framing, on the real kernel: a tun device
(ARPHRD_NONE, the framing of WireGuard and most VPNs) is read as raw IP, finds what the
same packets give as a LINKTYPE_RAW file, and a tcpdump filter is compiled for raw IP.
Needs root and /dev/net/tun."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netsleuth import craft
from netsleuth.capture.writer import write_pcap
from netsleuth.craft.l3 import fragment_ipv4
from tests.livenet import NETSLEUTH, start_live

pytestmark = pytest.mark.privileged

TUNSETIFF = 0x400454CA  # include/uapi/linux/if_tun.h: _IOW('T', 202, int)
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


@pytest.fixture
def tun() -> Iterator[tuple[str, int]]:
    """A tun device that exists while its descriptor is open (not persistent: it goes
    with this process whatever happens), up, with IPv6 off so the kernel sends nothing."""
    if os.geteuid() != 0:
        pytest.skip("needs root: a tun device and AF_PACKET")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun on this kernel (CONFIG_TUN)")
    name = f"nslt{os.getpid() % 100_000}"
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
        v6 = Path("/proc/sys/net/ipv6/conf", name, "disable_ipv6")
        if v6.exists():
            v6.write_text("1")
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name, fd
    finally:
        os.close(fd)


def _packets() -> list[bytes]:
    """UDP and TCP between two hosts, and incident 1's zero-length fragment after its
    first fragment."""
    a, b = "192.0.2.1", "192.0.2.2"
    udp = [craft.ipv4(a, b, craft.udp(a, b, 5000 + k, 53, b"q" * 20), 17) for k in range(5)]
    tcp = [
        craft.ipv4(a, b, craft.tcp(a, b, 40000, 443, b"t" * 30, flags="PA"), 6) for _ in range(3)
    ]
    datagram = craft.udp(a, b, 7, 7, bytes(1392))
    first, zero = fragment_ipv4(a, b, datagram, 17, sizes=[1400, 0], ident=99)
    return [*udp, *tcp, first, zero]


def _live(name: str, *args: str) -> subprocess.Popen[str]:
    return start_live(name, "--duration", "2", "--format", "json", *args)


def _report(p: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    last: dict[str, Any] = json.loads(out.splitlines()[-1])
    assert last["event"] == "report"
    return last


def test_a_tun_device_is_read_as_raw_ip(tun: tuple[str, int], tmp_path: Path) -> None:
    name, fd = tun
    packets = _packets()
    p = _live(name)
    for pkt in packets:
        os.write(fd, pkt)
    report = _report(p)
    path = tmp_path / "raw.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(k * 1000, pkt) for k, pkt in enumerate(packets)], linktype=101)
    done = subprocess.run(
        [NETSLEUTH, "scan", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    file_ids = sorted((f["id"], tuple(f["packets"])) for f in json.loads(done.stdout)["findings"])
    assert report["packets"] == len(packets)
    assert sorted((f["id"], tuple(f["packets"])) for f in report["findings"]) == file_ids
    assert ("ipv4.fragment.zero_length", (len(packets),)) in file_ids


def test_a_filter_is_compiled_for_raw_ip(tun: tuple[str, int]) -> None:
    """`udp` behind no link header: libpcap's program for DLT_RAW. Compiled for Ethernet
    it would test bytes 12-13 of the IP header for the IPv4 EtherType and pass nothing."""
    name, fd = tun
    packets = _packets()
    p = _live(name, "--filter", "udp and dst port 53")
    for pkt in packets:
        os.write(fd, pkt)
    assert _report(p)["packets"] == 5


def test_inner_terms_on_a_link_without_ethernet_are_refused(tun: tuple[str, int]) -> None:
    name, _ = tun
    done = subprocess.run(
        [NETSLEUTH, "scan", "--live", name, "--duration", "1", "--filter", "inner.proto udp"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "inner.* terms are offsets behind an Ethernet header" in done.stderr
