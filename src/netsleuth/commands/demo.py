"""`netsleuth demo`: build the three incident captures and scan them."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.outpaths import atomic_output
from netsleuth.report.jsonout import document, dumps, scan_document
from netsleuth.report.text import render_scan
from netsleuth.scan import ScanResult, scan
from netsleuth.steering.model import NicModel, RpsModel
from netsleuth.steering.run import SteerResult, steer

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
        # Renamed into place: a symlink planted in a --keep folder is replaced, not followed.
        with atomic_output(str(path), special_in_place=False) as fh:
            write_pcap(fh, build())
        out.append((path, story))
    return out


STEER_STORIES = [
    ("PPTP, outer-only NIC, Linux 4.9 RPS", "incident3-pptp.pcap", "outer", (4, 9)),
    ("PPTP, outer-only NIC, Linux 4.10 RPS", "incident3-pptp.pcap", "outer", (4, 10)),
    ("GRE v0, outer-only NIC", "incident3-gre-v0.pcap", "outer", None),
    ("GRE v0, inner-aware NIC", "incident3-gre-v0.pcap", "inner", None),
]


@dataclass(frozen=True)
class SteerRow:
    scenario: str
    queues_busy: int
    queue_max_over_mean: float
    cpus_busy: int | None
    cpu_max_over_mean: float | None
    findings: tuple[str, ...]


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


def write_html(
    path: Path, results: list[tuple[Path, str, ScanResult]], steered: dict[str, SteerResult]
) -> None:
    """The demo's report: the three scans and incident 3's steering, in one HTML file."""
    from netsleuth.report import html

    page = html.Page("netsleuth demo: three incidents")
    for path_, story, result in results:
        html.add_scan(page, result, f"{story} ({path_.name})")
    for label in STEER_STORIES[:2]:
        html.add_steer(page, steered[label[0]], f"steer, 8 queues / 8 CPUs: {label[0]}")
    page.write(path)


def run_demo(console: Console, fmt: str, keep: str | None, html_path: str | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="netsleuth-demo-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        captures = write_captures(folder)
        results = [(path, story, scan([str(path)])) for path, story in captures]
        steered: dict[str, SteerResult] = {}
        steering = steer_stories(folder, steered)
        report = Path(html_path or (folder if keep else Path.cwd()) / "netsleuth-demo.html")
        write_html(report, results, steered)
        # And the receive path of the machine the demo runs on (2 samples, 1 s apart).
        from netsleuth.doctor import doctor_live

        host = doctor_live(2, 1.0)
        if fmt == "json":
            from netsleuth.report.doctor_text import rates_json

            scans = [dict(scan_document(r), story=story) for _, story, r in results]
            steer_json = [asdict(row) for row in steering]
            doctor_json = {
                "findings": [f.to_json() for f in host.findings],
                "rates": rates_json(host.rates),
                "notes": host.notes,
            }
            console.print_json(
                dumps(
                    document(
                        "demo",
                        [],
                        scans=scans,
                        steer=steer_json,
                        doctor=doctor_json,
                        html=str(report),
                    )
                )
            )
            return 0
        for path, story, result in results:
            console.print(Rule(story))
            render_scan(console, result, title=f"scan {path.name}")
            console.print()
        console.print(
            Rule("Incident 3: where the receive load lands (netsleuth steer, 8 queues / 8 CPUs)")
        )
        table = Table(box=None, pad_edge=False)
        for col in ("scenario", "queues busy", "queue max/mean", "CPUs busy", "CPU max/mean"):
            table.add_column(col, justify="left" if col == "scenario" else "right")
        for row in steering:
            table.add_row(
                row.scenario,
                str(row.queues_busy),
                f"{row.queue_max_over_mean:.1f}",
                "-" if row.cpus_busy is None else str(row.cpus_busy),
                "-" if row.cpu_max_over_mean is None else f"{row.cpu_max_over_mean:.1f}",
            )
        console.print(table)
        from netsleuth.report.doctor_text import render_doctor

        console.print(Rule("This machine's receive path (netsleuth doctor, 2 samples 1 s apart)"))
        render_doctor(console, host)
        if keep:
            console.print(f"captures kept in {folder}")
        console.print(f"report: {report} (open it in a browser; it works offline)")
    return 0


@dataclass(frozen=True)
class Options:
    fmt: str
    keep: str | None
    html_path: str | None


def execute(opts: Options) -> int:
    from netsleuth.cliutil import stdout_console

    return run_demo(stdout_console(), opts.fmt, opts.keep, opts.html_path)
