"""`netsleuth demo`: build the three incident captures and scan them."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.report.jsonout import document, dumps, scan_document
from netsleuth.report.text import render_scan
from netsleuth.scan import scan

STORIES = [
    (
        "incident1-poison-fragment.pcap",
        incidents.incident1_poison_fragment,
        "Incident 1: a zero-payload IPv4 fragment inside VLAN + GRE-TEB hung a DPDK NIC",
    ),
    (
        "incident2-stp-llc.pcap",
        incidents.incident2_stp_llc,
        "Incident 2: 802.3/LLC spanning-tree frames behind a steady rx_dropped",
    ),
    (
        "incident3-pptp.pcap",
        incidents.incident3_pptp,
        "Incident 3: PPTP (GRE v1) traffic with thousands of inner flows, few outer ones",
    ),
]


def write_captures(folder: Path) -> list[tuple[Path, str]]:
    out = []
    for name, build, story in STORIES:
        path = folder / name
        with open(path, "wb") as fh:
            write_pcap(fh, build())
        out.append((path, story))
    return out


def run_demo(console: Console, fmt: str, keep: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="netsleuth-demo-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        captures = write_captures(folder)
        results = [(path, story, scan([str(path)])) for path, story in captures]
        if fmt == "json":
            console.print_json(
                dumps(
                    document(
                        "demo",
                        [],
                        scans=[dict(scan_document(r), story=story) for _, story, r in results],
                    )
                )
            )
            return 0
        for path, story, result in results:
            console.print(Rule(story))
            render_scan(console, result, title=f"scan {path.name}")
            console.print()
        if keep:
            console.print(f"captures kept in {folder}")
    return 0
