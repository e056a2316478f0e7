"""Ordinary traffic from the real Linux kernel, captured by dumpcap (fixtures/kernel/): scan
flags nothing at warning or above on it (a finding that fires on ordinary traffic is a bug),
the outer fragments that carried VXLAN are the ones tshark shows, and the summary counts
the VXLAN packets tshark counts, in one process and split into ranges."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import clirun
from tests.splitutil import one, record_starts, split

KERNEL = Path(__file__).with_name("fixtures") / "kernel"
CAPTURES = sorted(KERNEL.glob("*.pcap"))


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_ordinary_kernel_traffic_has_no_warning(path: Path) -> None:
    doc = clirun.run("scan", "--format", "json", "--fail-on", "warning", str(path), code=0).json()
    assert doc["inputs"][0]["error"] is None and doc["inputs"][0]["packets"] > 0
    assert [f["id"] for f in doc["findings"] if f["severity"] != "info"] == []


def test_the_outer_fragments_carrying_vxlan_are_tsharks(tshark: str) -> None:
    path = KERNEL / "vxlan-outer-fragments.pcap"
    fields = ["frame.number", "ip.flags.mf", "ip.frag_offset", "udp.dstport"]
    out = subprocess.run(
        [tshark, "-r", str(path), "-o", "ip.defragment:FALSE", "-T", "fields"]
        + [a for f in fields for a in ("-e", f)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    outer_fragments = []
    for line in out.splitlines():
        frame, mf, off, _ = (line.split("\t") + [""] * 4)[:4]
        # The first value of each field is the outer IPv4 header's.
        if mf and (mf.split(",")[0] == "1" or off.split(",")[0] != "0"):
            outer_fragments.append(int(frame))
    assert outer_fragments  # the kernel fragmented the outer UDP packets
    doc = clirun.run("scan", "--format", "json", str(path), code=0).json()
    (carried,) = [f for f in doc["findings"] if f["id"] == "tunnel.outer_fragmented"]
    assert carried["packets"] == outer_fragments


def test_vxlan_packets_in_outer_fragments_count_in_the_summary(tshark: str) -> None:
    """A UDP tunnel's first outer fragment stops at UDP, so only the rebuilt datagram shows
    the tunnel: the summary counts it there (helper-30 saw `tunnels: {}` on a capture of
    nothing but VXLAN). tshark, reassembling, shows VXLAN on every whole packet and on
    each datagram's last fragment."""
    path = KERNEL / "vxlan-outer-fragments.pcap"
    shown = subprocess.run(
        [tshark, "-r", str(path), "-o", "ip.defragment:TRUE", "-Y", "vxlan"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for workers in ("1", "2"):
        doc = clirun.run("scan", "--format", "json", "--workers", workers, str(path)).json()
        assert doc["summary"]["tunnels"] == {"vxlan": len(shown)}


def test_split_into_ranges_the_summary_and_findings_are_one_processs() -> None:
    """The same count when the file is cut into ranges (scale: the parent rebuilds the
    outer datagrams as it replays the ranges' fragments, and adds their tunnels)."""
    path = KERNEL / "vxlan-outer-fragments.pcap"
    starts = record_starts(path)
    whole = one(path)
    for cuts in ([starts[21]], [starts[10], starts[22], starts[32]], starts[18:36:3]):
        assert split(path, cuts) == whole
