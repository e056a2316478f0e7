"""`netsleuth listen` as text: the socket table's shape, the walk per SYN, the findings."""

from __future__ import annotations

from rich.console import Console

from netsleuth.findings import Finding
from netsleuth.host.listen import ListenModel
from netsleuth.report.text import render_findings


def render_listen(console: Console, m: ListenModel, findings: list[Finding]) -> None:
    console.print(
        f"{m.sockets:,} listening sockets, {m.ports:,} ports, {m.groups:,} "
        f"address:port groups (largest reuseport group {m.biggest_group})",
        highlight=False,
    )
    console.print(
        f"sockets walked per SYN: {m.per_syn_running:,.1f} under Linux "
        f"{m.kernel[0]}.{m.kernel[1]} (32 port-only buckets: {m.per_syn_old:,.1f},"
        f" worst {m.worst_old:,}; lhash2: {m.per_syn_new:,.1f})",
        highlight=False,
    )
    render_findings(console, findings)
