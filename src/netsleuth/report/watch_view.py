"""`watch`: the receive path per second. A rich Live view on a terminal (per-CPU and
per-device tables, anomalies in red, the findings of the last second); one plain line per
CPU with activity and per device in a pipe, so `watch | grep` and logs work."""

from __future__ import annotations

import time

from rich.console import Console, Group, RenderableType
from rich.text import Text

from netsleuth.findings import Finding
from netsleuth.host.rates import Rates
from netsleuth.report.doctor_text import cpu_table, device_table


def _queues(r: Rates) -> Text:
    parts = []
    for dev, qs in sorted(r.queues.items()):
        cells = " ".join(f"q{q}={v:,.0f}" for q, v in sorted(qs.items()))
        parts.append(f"{dev}: {cells}")
    return Text("per-queue packets/s: " + ("; ".join(parts) or "no per-queue counters"))


def frame(r: Rates, findings: list[Finding]) -> Group:
    items: list[RenderableType] = [
        Text(time.strftime("%H:%M:%S") + f"  (every {r.seconds:.1f} s)", style="bold"),
        cpu_table(r),
        device_table(r),
        _queues(r),
    ]
    for f in findings:
        items.append(Text(f"{f.id}: {f.summary}", style="bold red"))
    return Group(*items)


def lines(r: Rates, findings: list[Finding]) -> list[str]:
    stamp = time.strftime("%H:%M:%S")
    out = []
    for cpu in r.cpus():
        sn = r.softnet.get(cpu, {})
        out.append(
            f"{stamp} cpu{cpu} net_rx={r.net_rx.get(cpu, 0.0):.0f}/s "
            f"softirq={r.softirq_pct.get(cpu, 0.0):.1f}% "
            f"processed={sn.get('processed', 0.0):.0f}/s "
            f"dropped={sn.get('dropped', 0.0):.0f}/s squeeze={sn.get('time_squeeze', 0.0):.0f}/s "
            f"rps={sn.get('received_rps', 0.0):.0f}/s"
        )
    for dev, row in sorted(r.devices.items()):
        q = r.queues.get(dev, {})
        queues = " " + " ".join(f"q{k}={v:.0f}/s" for k, v in sorted(q.items())) if q else ""
        out.append(
            f"{stamp} {dev} rx={row.get('rx_packets', 0.0):.0f}/s "
            f"dropped={row.get('rx_dropped', 0.0):.1f}/s "
            f"missed={row.get('rx_missed_errors', 0.0):.1f}/s{queues}"
        )
    out += [f"{stamp} ! {f.id}: {f.summary}" for f in findings]
    return out


def print_lines(console: Console, r: Rates, findings: list[Finding]) -> None:
    console.print("\n".join(lines(r, findings)), highlight=False, soft_wrap=True)
