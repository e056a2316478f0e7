"""`netsleuth demo`: build the three incident captures and scan them, show incident 3's
steering side by side, sample this machine's receive path, and write one HTML report."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.outpaths import atomic_output
from netsleuth.scan import ScanResult, scan
from netsleuth.steering.model import NicModel, RpsModel
from netsleuth.steering.run import SteerResult, steer

if TYPE_CHECKING:
    from netsleuth.doctor import Diagnosis

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

STEER_STORIES = [
    ("PPTP, outer-only NIC, Linux 4.9 RPS", "incident3-pptp.pcap", "outer", (4, 9)),
    ("PPTP, outer-only NIC, Linux 4.10 RPS", "incident3-pptp.pcap", "outer", (4, 10)),
    ("GRE v0, outer-only NIC", "incident3-gre-v0.pcap", "outer", None),
    ("GRE v0, inner-aware NIC", "incident3-gre-v0.pcap", "inner", None),
]
# The steering scenarios the HTML report draws (the two kernels' RPS on PPTP).
HTML_STEER = tuple(label for label, *_ in STEER_STORIES[:2])


@dataclass(frozen=True)
class Options:
    fmt: str
    keep: str | None
    html_path: str | None


@dataclass(frozen=True)
class StoryScan:
    path: Path
    story: str
    result: ScanResult


@dataclass(frozen=True)
class SteerRow:
    scenario: str
    queues_busy: int
    queue_max_over_mean: float
    cpus_busy: int | None
    cpu_max_over_mean: float | None
    findings: tuple[str, ...]


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    kept: bool  # --keep: the captures stay in `folder`
    scans: list[StoryScan]
    steering: list[SteerRow]
    report: Path  # the HTML report written
    host: Diagnosis  # doctor on this machine

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.doctor_text import rates_json
        from netsleuth.report.jsonout import document, scan_document

        return document(
            "demo",
            [],
            scans=[dict(scan_document(s.result), story=s.story) for s in self.scans],
            steer=[asdict(row) for row in self.steering],
            doctor={
                "findings": [f.to_json() for f in self.host.findings],
                "rates": rates_json(self.host.rates),
                "notes": self.host.notes,
            },
            html=str(self.report),
        )


def write_captures(folder: Path) -> list[tuple[Path, str]]:
    out = []
    for name, build, story in STORIES:
        path = folder / name
        # Renamed into place: a symlink planted in a --keep folder is replaced, not followed.
        with atomic_output(str(path), special_in_place=False) as fh:
            write_pcap(fh, build())
        out.append((path, story))
    return out


def steer_stories(folder: Path, results: dict[str, SteerResult] | None = None) -> list[SteerRow]:
    """Incident 3 side by side: what the NIC and the kernel make of the same traffic (each
    scenario's result kept in `results` when given, for the HTML report)."""
    gre = folder / "incident3-gre-v0.pcap"
    with open(gre, "wb") as fh:
        write_pcap(fh, incidents.incident3_gre_v0())
    rows = []
    for label, name, parse, kernel in STEER_STORIES:
        rps = RpsModel(kernel, tuple(range(8))) if kernel else None
        r = steer([str(folder / name)], NicModel(queues=8, parse=parse), rps)
        if results is not None:
            results[label] = r
        cpus = r.cpus
        rows.append(
            SteerRow(
                label,
                int((r.queues.packets > 0).sum()),
                round(r.queues.max_over_mean(), 2),
                None if cpus is None else int((cpus.packets > 0).sum()),
                None if cpus is None else round(cpus.max_over_mean(), 2),
                tuple(sorted({f.id for f in r.findings})),
            )
        )
    return rows


def run(opts: Options) -> DemoResult:
    """Write the captures (to --keep or a temporary folder removed on every way out) and the
    HTML report, scan and steer the captures, then sample this machine twice, 1 s apart."""
    from netsleuth.doctor import doctor_live
    from netsleuth.report.demo_html import demo_page

    with tempfile.TemporaryDirectory(prefix="netsleuth-demo-") as tmp:
        folder = Path(opts.keep) if opts.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        scans = [StoryScan(p, story, scan([str(p)])) for p, story in write_captures(folder)]
        steered: dict[str, SteerResult] = {}
        steering = steer_stories(folder, steered)
        default = (folder if opts.keep else Path.cwd()) / "netsleuth-demo.html"
        report = Path(opts.html_path or default)
        page = demo_page(
            [(s.path, s.story, s.result) for s in scans],
            [(label, steered[label]) for label in HTML_STEER],
        )
        page.write(report)
        host = doctor_live(2, 1.0)
    return DemoResult(folder, bool(opts.keep), scans, steering, report, host)


def execute(opts: Options) -> int:
    from netsleuth.cliutil import stdout_console
    from netsleuth.report.jsonout import dumps

    result = run(opts)
    console = stdout_console()
    if opts.fmt == "json":
        # Through rich's print_json, as the demo always printed it (indent 2, non-ASCII kept).
        console.print_json(dumps(result.to_json()))
    else:
        from netsleuth.report.demo_text import render_demo

        render_demo(console, result)
    return 0
