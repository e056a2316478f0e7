"""Text output of `steer`: per-queue and per-CPU load bars, flows, findings."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from netsleuth.report.text import render_findings
from netsleuth.steering.compare import Scenario
from netsleuth.steering.run import Bucket, SteerResult, copies_note, heaviest, sent_note


def _bars(
    console: Console, title: str, bucket: Bucket, label: str, only: tuple[int, ...] | None = None
) -> None:
    table = Table(title=title, box=None, pad_edge=False, title_justify="left")
    table.add_column(label, justify="right")
    table.add_column("packets", justify="right")
    table.add_column("share", justify="right")
    table.add_column("")
    total = max(int(bucket.packets.sum()), 1)
    top = max(int(bucket.packets.max()), 1)
    for i, n in enumerate(bucket.packets):
        if only is not None and i not in only:
            continue
        bar = "#" * round(30 * int(n) / top)
        table.add_row(str(i), f"{int(n):,}", f"{int(n) / total:.0%}", Text(bar, style="cyan"))
    console.print(table)
    console.print(
        f"  max/mean {bucket.max_over_mean():.2f}, coefficient of variation {bucket.cv():.2f}",
        highlight=False,
    )


def render_steer(console: Console, r: SteerResult) -> None:
    nic = r.nic
    console.print(
        Text(f"netsleuth steer: {r.packets:,} packets, {r.distinct_flows:,} flows", style="bold")
    )
    console.print(
        f"NIC: {nic.queues} queues, parses {nic.parse} headers"
        f"{' (and PPTP)' if nic.pptp else ''}, ports hashed for "
        f"{', '.join(sorted(nic.l4)) or 'nothing'}; {r.rss_keys:,} distinct RSS hashes",
        highlight=False,
    )
    if r.sent[0]:
        console.print(sent_note(r.sent[0]), highlight=False)
    if r.copies[0]:
        console.print(copies_note(r.copies[0]), highlight=False)
    _bars(console, "RSS queues", r.queues, "queue")
    if r.rps is not None and r.cpus is not None:
        k = r.rps.kernel
        console.print(
            f"\nRPS on CPUs {','.join(map(str, r.rps.cpus))}, flow dissector of "
            f"Linux {k[0]}.{k[1]}; {r.rps_keys:,} distinct RPS hashes (modelled: "
            "the kernel's hash secret is random per boot; RFS not modelled)",
            highlight=False,
        )
        _bars(console, "RPS CPUs", r.cpus, "cpu", r.rps.cpus)
    flows = heaviest(r, 5)
    if flows:
        table = Table(title="heaviest flows", title_justify="left", header_style="bold", box=None)
        for col in ("flow", "proto", "packets", "share"):
            table.add_column(col, justify="left" if col == "flow" else "right")
        for f in flows:
            table.add_row(
                f"{f['src']}:{f['sport']} -> {f['dst']}:{f['dport']}",
                str(f["proto"]),
                f"{f['packets']:,}",
                f"{float(str(f['share'])):.1%}",
            )
        console.print()
        console.print(table)
    if r.non_ip:
        kinds = ", ".join(
            f"{name} {p:,}" for name, (p, _) in sorted(r.non_ip.items(), key=lambda kv: -kv[1][0])
        )
        console.print(
            f"\nnot IP: {kinds} (no RSS hash: queue {r.non_ip_queue()}; RPS keys them on "
            "the protocol alone: one CPU per protocol)",
            highlight=False,
        )
    note = r.ride_note()
    if note:
        console.print(f"\n{note}", highlight=False)
    render_findings(console, r.findings)


def render_compare(console: Console, rows: list[Scenario]) -> None:
    table = Table(
        title="what if (max/mean: 1.0 is even; N queues or CPUs busy)",
        title_justify="left",
        header_style="bold",
        box=None,
    )
    for col in ("NIC parses", "RPS", "queue max/mean", "queues busy", "CPU max/mean", "CPUs busy"):
        table.add_column(col, justify="left" if col in ("NIC parses", "RPS") else "right")
    for s in rows:
        table.add_row(
            f"{s.nic} headers",
            s.rps,
            f"{s.queue_max_over_mean:.1f}",
            str(s.queues_busy),
            "-" if s.cpu_max_over_mean is None else f"{s.cpu_max_over_mean:.1f}",
            "-" if s.cpus_busy is None else str(s.cpus_busy),
        )
    console.print()
    console.print(table)
