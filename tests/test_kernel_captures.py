"""Ordinary traffic from the real Linux kernel, captured by dumpcap (fixtures/kernel/): scan
flags nothing at warning or above on it (a finding that fires on ordinary traffic is a bug),
and the outer fragments that carried VXLAN are the ones tshark shows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import clirun

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
