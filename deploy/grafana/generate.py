"""Write netsleuth.json, the Grafana dashboard for `netsleuth exporter` (one source for its
panels: PANELS). Run from the repository root: python deploy/grafana/generate.py"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Spec = tuple[str, str, list[tuple[str, str]], str, str]
SEL = '{instance=~"$instance"}'
RATE = "$__rate_interval"
# (title, panel type, [(expr, legend)], unit, description)
PANELS: list[Spec] = [
    (
        "NET_RX softirqs per CPU (incident 3: a few hot cores)",
        "heatmap",
        [(f"sum by (cpu) (rate(netsleuth_softirq_net_rx_total{SEL}[{RATE}]))", "{{cpu}}")],
        "ops",
        "One row per CPU; a bright band on a few rows is receive load piled onto few cores.",
    ),
    (
        "Packets processed per CPU (softnet)",
        "timeseries",
        [(f"sum by (cpu) (rate(netsleuth_softnet_processed_total{SEL}[{RATE}]))", "cpu {{cpu}}")],
        "pps",
        "softnet_stat column 1: packets each CPU's NET_RX softirq handled.",
    ),
    (
        "Backlog drops and time squeezes",
        "timeseries",
        [
            (f"sum(rate(netsleuth_softnet_dropped_total{SEL}[{RATE}]))", "dropped"),
            (f"sum(rate(netsleuth_softnet_time_squeeze_total{SEL}[{RATE}]))", "time_squeeze"),
        ],
        "ops",
        "dropped: the CPU backlog was full; time_squeeze: NET_RX ran out of budget or time.",
    ),
    (
        "RPS: packets steered to each CPU",
        "timeseries",
        [
            (
                f"sum by (cpu) (rate(netsleuth_softnet_received_rps_total{SEL}[{RATE}]))",
                "cpu {{cpu}}",
            )
        ],
        "pps",
        "One line far above the rest: few flow keys reach RPS.",
    ),
    (
        "RX packets per NIC queue",
        "timeseries",
        [
            (
                f"sum by (device, queue) (rate(netsleuth_nic_queue_rx_packets_total{SEL}[{RATE}]))",
                "{{device}} rx-{{queue}}",
            )
        ],
        "pps",
        "RSS spread: one queue far above the rest means few hash keys (tunnels, one flow).",
    ),
    (
        "Device rx_dropped and rx_nohandler",
        "timeseries",
        [
            (
                f"sum by (device) (rate(netsleuth_netdev_rx_dropped_total{SEL}[{RATE}]))",
                "{{device}} rx_dropped",
            ),
            (
                f"sum by (device) (rate(netsleuth_netdev_rx_nohandler_total{SEL}[{RATE}]))",
                "{{device}} rx_nohandler",
            ),
        ],
        "pps",
        "Packets the stack dropped for the device (incident 2: 802.3/LLC frames).",
    ),
    (
        "Kernel drops by location and reason (exporter --drops)",
        "timeseries",
        [
            (
                "topk(10, sum by (location, reason) "
                f"(rate(netsleuth_kernel_drops_total{SEL}[{RATE}])))",
                "{{location}} {{reason}}",
            )
        ],
        "pps",
        "kfree_skb drops grouped by the kernel function and the drop reason.",
    ),
    (
        "Active findings",
        "table",
        [(f"netsleuth_finding_active{SEL} == 1", "{{id}}")],
        "none",
        "doctor's findings over the last scrape interval (1 = firing).",
    ),
    (
        "Exporter scrape cost",
        "timeseries",
        [(f"netsleuth_exporter_collect_seconds{SEL}", "{{instance}}")],
        "s",
        "Seconds each scrape spends reading /proc, /sys and SIOCETHTOOL.",
    ),
]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def panel(n: int, spec: Spec) -> dict[str, Any]:
    title, kind, targets, unit, doc = spec
    wide = kind in ("heatmap", "table")
    return {
        "id": n + 1,
        "type": kind,
        "title": title,
        "description": doc,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 24 if wide else 12, "x": 0 if wide else 12 * (n % 2), "y": 8 * n},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                **({"format": "heatmap"} if kind == "heatmap" else {}),
                **({"instant": True} if kind == "table" else {}),
            }
            for i, (expr, legend) in enumerate(targets)
        ],
        **(
            {"options": {"calculate": False, "yAxis": {"unit": "short"}}}
            if kind == "heatmap"
            else {}
        ),
    }


def dashboard() -> dict[str, Any]:
    return {
        "title": "netsleuth: receive path",
        "uid": "netsleuth-rx",
        "tags": ["netsleuth", "network"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Data source",
                },
                {
                    "name": "instance",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": "label_values(netsleuth_softnet_processed_total, instance)",
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "label": "Host",
                },
            ]
        },
        "annotations": {"list": []},
        "panels": [panel(n, p) for n, p in enumerate(PANELS)],
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("netsleuth.json")
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
