"""`netsleuth demo` as text: each incident's scan, incident 3's steering table, then
doctor on this machine and where the captures and the report are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from netsleuth.report.doctor_text import render_doctor
from netsleuth.report.text import render_scan

if TYPE_CHECKING:
    from netsleuth.commands.demo import DemoResult, SteerRow

STEER_COLUMNS = ("scenario", "queues busy", "queue max/mean", "CPUs busy", "CPU max/mean")


def render_demo(console: Console, result: DemoResult) -> None:
    for s in result.scans:
        console.print(Rule(s.story))
        render_scan(console, s.result, title=f"scan {s.path.name}")
        console.print()
    console.print(
        Rule("Incident 3: where the receive load lands (netsleuth steer, 8 queues / 8 CPUs)")
    )
    console.print(_steer_table(result.steering))
    console.print(Rule("This machine's receive path (netsleuth doctor, 2 samples 1 s apart)"))
    render_doctor(console, result.host)
    if result.kept:
        console.print(f"captures kept in {result.folder}")
    console.print(f"report: {result.report} (open it in a browser; it works offline)")


def _steer_table(rows: list[SteerRow]) -> Table:
    table = Table(box=None, pad_edge=False)
    for col in STEER_COLUMNS:
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for row in rows:
        table.add_row(
            row.scenario,
            str(row.queues_busy),
            f"{row.queue_max_over_mean:.1f}",
            "-" if row.cpus_busy is None else str(row.cpus_busy),
            "-" if row.cpu_max_over_mean is None else f"{row.cpu_max_over_mean:.1f}",
        )
    return table
