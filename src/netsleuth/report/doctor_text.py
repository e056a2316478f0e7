"""`doctor` for people: what was read, the per-CPU and per-device rates, then findings."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from netsleuth.doctor import Diagnosis
from netsleuth.host.rates import Rates
from netsleuth.report.text import render_findings

DEV_COLS = ("rx_packets", "rx_dropped", "rx_nohandler", "rx_missed_errors", "rx_fifo_errors")


def rates_json(r: Rates | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "seconds": round(r.seconds, 3),
        "cpus": [
            {
                "cpu": cpu,
                "net_rx": round(r.net_rx.get(cpu, 0.0), 1),
                "softirq_pct": round(r.softirq_pct.get(cpu, 0.0), 1),
                **{k: round(v, 1) for k, v in r.softnet.get(cpu, {}).items()},
            }
            for cpu in r.cpus()
        ],
        "devices": {
            dev: {k: round(v, 2) for k, v in sorted(row.items()) if v}
            for dev, row in sorted(r.devices.items())
        },
        "queues": {
            dev: {str(q): round(v, 1) for q, v in sorted(qs.items())}
            for dev, qs in sorted(r.queues.items())
        },
    }


def cpu_table(r: Rates) -> Table:
    t = Table(title="per CPU, per second", title_justify="left", header_style="bold", box=None)
    for col in ("cpu", "NET_RX", "softirq %", "processed", "dropped", "squeeze", "rps"):
        t.add_column(col, justify="right")
    for cpu in r.cpus():
        sn = r.softnet.get(cpu, {})
        t.add_row(
            str(cpu),
            f"{r.net_rx.get(cpu, 0.0):,.0f}",
            f"{r.softirq_pct.get(cpu, 0.0):.1f}",
            f"{sn.get('processed', 0.0):,.0f}",
            _hot(sn.get("dropped", 0.0)),
            _hot(sn.get("time_squeeze", 0.0)),
            f"{sn['received_rps']:,.0f}" if "received_rps" in sn else "-",
        )
    return t


def _hot(v: float) -> Text:
    return Text(f"{v:,.1f}", style="bold red" if v > 0 else "")


def device_table(r: Rates) -> Table:
    t = Table(title="per device, per second", title_justify="left", header_style="bold", box=None)
    t.add_column("device")
    for col in DEV_COLS:
        t.add_column(col.removeprefix("rx_"), justify="right")
    for dev, row in sorted(r.devices.items()):
        cells = [Text(f"{row.get('rx_packets', 0.0):,.0f}")]
        cells += [_hot(row.get(c, 0.0)) for c in DEV_COLS[1:]]
        t.add_row(dev, *cells)
    return t


def render_doctor(console: Console, d: Diagnosis) -> None:
    last = d.samples[-1]
    span = f" over {d.rates.seconds:.1f} s" if d.rates else ""
    console.print(
        Text(
            f"netsleuth doctor: {d.source}, {d.count} sample(s){span}, Linux "
            f"{last.kernel or '?'}, {len(last.cpus)} CPUs",
            style="bold",
        )
    )
    if d.rates is None:
        console.print(
            Text("one sample: static checks only (rates need --samples >= 2)", style="dim")
        )
    else:
        console.print(cpu_table(d.rates))
        console.print(device_table(d.rates))
    for note in d.notes[:10]:
        console.print(Text(f"note: {note}", style="dim"), highlight=False)
    if len(d.notes) > 10:
        console.print(Text(f"note: ... {len(d.notes) - 10} more", style="dim"))
    render_findings(console, d.findings)
    for f in d.findings:
        nxt = f.evidence.get("next")
        if nxt:
            console.print(Text(f"  next for {f.id}: {nxt}", style="dim"), highlight=False)
