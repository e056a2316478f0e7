"""`lab` for people: one row per frame (verdict, where the kernel dropped it and why, the
counters it moved, replies), then the notes and the findings."""

from __future__ import annotations

from collections import Counter

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from netsleuth.ethertypes import protocol_name
from netsleuth.findings import Finding
from netsleuth.lab.incidents import IncidentReport, this_kernel
from netsleuth.lab.replay import LabReport
from netsleuth.lab.rps import PRODUCTION, Phase, RpsReport
from netsleuth.lab.verdict import Result
from netsleuth.report.text import render_findings

VERDICT_STYLE = {
    "dropped": "bold red",
    "delivered": "green",
    "reassembly": "cyan",
    "forwarded": "cyan",
    "no_effect": "dim",
    "not_sent": "yellow",
}
MAX_COUNTERS = 6  # per row; JSON has them all


def _counters(r: Result) -> str:
    items = [f"{k}+{v}" if v > 0 else f"{k}{v}" for k, v in r.counters.items()]
    more = len(items) - MAX_COUNTERS
    text = " ".join(items[:MAX_COUNTERS])
    return text + (f" (+{more} more)" if more > 0 else "") if items else "-"


def _detail(r: Result) -> str:
    if r.verdict == "dropped":
        proto = r.protocol or 0
        return f"{r.where} {r.reason or '-'} (0x{proto:04x} {protocol_name(proto)})"
    if r.consumed_at:
        return f"consumed at {r.consumed_at}"
    return ""


def lab_table(results: list[Result], labels: list[str] | None = None) -> Table:
    table = Table(header_style="bold", box=None)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("frame", "right"),
        ("verdict", "left"),
        ("where / why", "left"),
        ("counters moved", "left"),
        ("replies", "right"),
    )
    for col, just in columns:
        table.add_column(col, justify=just)
    for i, r in enumerate(results):
        detail = _detail(r)
        if labels is not None:
            detail = f"{labels[i]}\n{detail}" if detail else labels[i]
        notes = "; ".join(r.notes)
        cell = Text(detail)
        if notes:
            cell.append(("\n" if detail else "") + notes, style="dim")
        table.add_row(
            str(r.frame),
            Text(r.verdict, style=VERDICT_STYLE.get(r.verdict, "")),
            cell,
            Text(_counters(r)),
            str(r.replies) if r.replies else "",
        )
    return table


def render_lab(console: Console, report: LabReport, findings: list[Finding], title: str) -> None:
    tally = Counter(r.verdict for r in report.results)
    parts = ", ".join(f"{n} {v}" for v, n in tally.most_common())
    console.print(
        Text(
            f"{title}: {len(report.results)} frame(s) on kernel {report.kernel}: {parts} "
            f"({report.rate:,.0f} frames/s, each attributed alone)",
            style="bold",
        )
    )
    console.print(lab_table(report.results))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))
    render_findings(console, findings)


def render_incident(console: Console, rep: IncidentReport, findings: list[Finding]) -> None:
    sc = rep.scenario
    console.print(Text(f"netsleuth lab incident {sc.name}: {sc.title}", style="bold"))
    console.print(lab_table(rep.lab.results, rep.labels))
    side = Table(header_style="bold", box=None, show_lines=True)
    side.add_column("what the incident's system did", ratio=1)
    side.add_column(f"what this kernel ({rep.lab.kernel}) did", ratio=1)
    side.add_row(Text(sc.production), Text(this_kernel(rep.lab.results, rep.labels)))
    console.print(side)
    for note in rep.lab.notes:
        console.print(Text(f"note: {note}", style="dim"))
    render_findings(console, findings)


def render_rps(console: Console, rep: RpsReport) -> None:
    console.print(
        Text(
            f"netsleuth lab incident stgw-rps: RPS over CPUs {rep.cpus} on kernel {rep.kernel}",
            style="bold",
        )
    )
    table = Table(header_style="bold", box=None)
    for col in ("traffic", "CPU", "measured", "softnet processed", "received_rps", "steer"):
        table.add_column(col, justify="left" if col == "traffic" else "right")
    for p in rep.phases:
        for i, cpu in enumerate(sorted(p.measured)):
            table.add_row(
                p.name if i == 0 else "",
                str(cpu),
                str(p.measured[cpu]),
                str(p.processed.get(cpu, 0)),
                str(p.received_rps.get(cpu, 0)),
                str(p.predicted.get(cpu, 0)),
            )
    console.print(table)
    for p in rep.phases:
        m, s = Phase.spread(p.measured), Phase.spread(p.predicted)
        console.print(
            Text(
                f"{p.name}: measured max/mean {m:.2f}, steer predicted {s:.2f} "
                f"({p.predicted_keys} distinct RPS hash keys), difference {m - s:+.2f}"
            )
        )
    side = Table(header_style="bold", box=None)
    side.add_column("what the incident's system did", ratio=1)
    side.add_column(f"what this kernel ({rep.kernel}) did", ratio=1)
    mine = "; ".join(
        f"{p.name}: {sum(1 for v in p.measured.values() if v)} of {len(p.measured)} CPUs"
        for p in rep.phases
    )
    side.add_row(Text(PRODUCTION), Text(mine))
    console.print(side)
    console.print(
        Text(
            "measured: frames each CPU processed (netif_receive_skb on the lab's device); "
            "softnet columns are host-wide deltas; the kernel's hash seed is random per "
            "boot, so steer predicts the spread, not which CPU",
            style="dim",
        )
    )
    for note in rep.notes:
        console.print(Text(f"note: {note}", style="dim"))
