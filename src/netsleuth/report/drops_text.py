"""`drops` for people: a table of drop groups (refreshing on a terminal with --interval,
one block per interval in a pipe), then the findings."""

from __future__ import annotations

import time

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from netsleuth.drops.run import Report, Tick
from netsleuth.drops.tally import DropGroup
from netsleuth.ethertypes import protocol_name
from netsleuth.report.text import render_findings


def drops_table(rows: list[DropGroup], top: int, title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", box=None)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("count", "right"),
        ("per s", "right"),
        ("location", "left"),
        ("reason", "left"),
        ("protocol", "left"),
    )
    for col, just in columns:
        table.add_column(col, justify=just)
    for r in rows[:top]:
        table.add_row(
            f"{r.count:,}",
            f"{r.per_second:,.1f}",
            r.where,
            r.reason or "-",
            f"0x{r.protocol:04x} {protocol_name(r.protocol)}",
        )
    if len(rows) > top:
        table.add_row("", "", Text(f"... {len(rows) - top} more groups", style="dim"), "", "")
    return table


class TickView:
    """--interval output: rich Live on a terminal, plain blocks in a pipe."""

    def __init__(self, console: Console, top: int) -> None:
        self.console = console
        self.top = top
        self.live = None
        if console.is_terminal:
            from rich.live import Live

            self.live = Live(Text("tracing drops..."), console=console, transient=True)
            self.live.start()

    def __call__(self, tick: Tick) -> None:
        rows = tick.rows
        title = (
            f"drops, last {tick.seconds:.1f} s (t={tick.elapsed:.0f} s, "
            f"{tick.total:,} total, {tick.lost_events:,} lost)"
        )
        if self.live is not None:
            self.live.update(drops_table(rows, self.top, title))
            return
        stamp = time.strftime("%H:%M:%S")
        lines = [f"{stamp} {title}"]
        for r in rows[: self.top]:
            lines.append(
                f"  {r.per_second:>10,.1f}/s  {r.where}  {r.reason or '-'}  "
                f"0x{r.protocol:04x} {protocol_name(r.protocol)}"
            )
        if not rows:
            lines.append("  no drops")
        self.console.print("\n".join(lines), highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def render_drops(console: Console, report: Report, top: int) -> None:
    rows = report.rows
    lost = (
        Text(f"{report.lost_events:,} events lost (ring buffer full)", style="bold red")
        if report.lost_events
        else Text("no events lost", style="green")
    )
    console.print(
        Text(
            f"netsleuth drops: {report.events:,} packets dropped in {report.seconds:.1f} s, ",
            style="bold",
        )
        + lost
    )
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"), highlight=False)
    if rows:
        console.print(drops_table(rows, top, ""))
    render_findings(console, report.findings)
