"""`lab` for people: one row per frame (verdict, where the kernel dropped it and why, the
counters it moved, replies), then the notes and the findings."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from netsleuth.ethertypes import protocol_name
from netsleuth.lab.replay import LabReport
from netsleuth.lab.verdict import Result
from netsleuth.model import Finding
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


def lab_table(results: list[Result]) -> Table:
    table = Table(header_style="bold", box=None)
    for col, just in (
        ("frame", "right"),
        ("verdict", "left"),
        ("where / why", "left"),
        ("counters moved", "left"),
        ("replies", "right"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in results:
        detail = _detail(r)
        notes = "; ".join(r.notes)
        if r.freed_earlier:
            notes = "; ".join(filter(None, [notes, f"freed frames {r.freed_earlier} queued"]))
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
        console.print(Text(f"note: {escape(note)}", style="dim"))
    render_findings(console, findings)
