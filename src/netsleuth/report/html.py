"""Self-contained HTML reports: one file, styles and the chart script inline, the data as
JSON in the page; it opens offline (an email attachment, a ticket) and draws with plain SVG
(html_assets/report.js, our own ~250 lines: no charting library to vendor or fetch).

Builders: record_page (a record database: per-CPU NET_RX heatmap, softnet drops and
squeezes, per-queue rates, drops by location and reason, findings on the timeline),
add_scan and add_steer (findings, packet kinds, per-queue and per-CPU bars; demo uses both).
"""

from __future__ import annotations

import html
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from netsleuth import __version__
from netsleuth.findings import Finding
from netsleuth.outpaths import atomic_output
from netsleuth.record.store import Recording

MAX_COLUMNS = 900  # time columns a chart draws; longer recordings take the max per bucket
MAX_QUEUE_SERIES = 32
MAX_DROP_SERIES = 8
HEATMAPS = (  # (record column, heading, unit, what to look for)
    (
        "net_rx",
        "NET_RX softirqs per CPU (per second)",
        "NET_RX/s",
        "one row a CPU: a bright band on a few rows is receive load piled onto few cores",
    ),
    (
        "softirq_pct",
        "Time in softirq per CPU (% of the CPU)",
        "% in softirq",
        "the same cores burning while the host-wide CPU looks fine is incident 3",
    ),
)


def _asset(name: str) -> str:
    return files("netsleuth.report").joinpath("html_assets", name).read_text()


def _num(v: float) -> float | None:
    """A value for the page's JSON: NaN and infinities (JSON has neither) are unknown."""
    return round(float(v), 1) if math.isfinite(v) else None


@dataclass
class Page:
    title: str
    meta: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def heading(self, text: str, note: str | None = None) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        if note:
            self.parts.append(f'<div class="note">{html.escape(note)}</div>')

    def chart(self, spec: dict[str, Any], zoomable: bool = False) -> None:
        key = f"c{len(self.data)}"
        self.data[key] = spec
        if zoomable:
            self.parts.append(
                '<div class="note"><button class="reset">reset zoom</button> '
                '<span class="zoomed"></span> drag across a chart to zoom</div>'
            )
        self.parts.append(f'<div class="chart" data-chart="{key}"></div>')

    def row(self, charts: list[tuple[str, dict[str, Any]]]) -> None:
        """Small charts side by side, each under its caption."""
        cells = []
        for caption, spec in charts:
            key = f"c{len(self.data)}"
            self.data[key] = spec
            cells.append(
                f'<div><div class="note">{html.escape(caption)}</div>'
                f'<div class="chart" data-chart="{key}"></div></div>'
            )
        self.parts.append(f'<div class="row">{"".join(cells)}</div>')

    def findings(self, findings: list[dict[str, Any]], when: bool = False) -> None:
        if not findings:
            self.parts.append('<div class="note">no findings</div>')
            return
        head = "<th>when (s)</th><th>samples</th>" if when else "<th>count</th>"
        rows = [f"<table><tr><th>severity</th><th>finding</th>{head}<th>summary</th></tr>"]
        for f in findings:
            sev = html.escape(f["severity"])
            cells = (
                f'<td class="num">{f["from"]}-{f["to"]}</td><td class="num">{f["samples"]}</td>'
                if when
                else f'<td class="num">{f["count"]:,}</td>'
            )
            evidence = json.dumps(f.get("evidence") or {}, indent=1, sort_keys=True)
            rows.append(
                f'<tr><td class="{sev}">{sev}</td><td>{html.escape(f["id"])}</td>{cells}'
                f"<td>{html.escape(f['summary'])}<details><summary>evidence</summary>"
                f"<pre>{html.escape(evidence)}</pre></details></td></tr>"
            )
        self.parts.append("".join(rows) + "</table>")

    def render(self) -> str:
        # "<" escaped in the JSON: no input-derived text can close the <script> element.
        # No NaN or Infinity either: the page's JSON.parse rejects them (ValueError here).
        data = json.dumps(self.data, separators=(",", ":"), allow_nan=False)
        data = data.replace("<", "\\u003c")
        meta = " · ".join(html.escape(m) for m in self.meta)
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_asset('report.css')}</style>"
            f'</head><body><h1>{html.escape(self.title)}</h1><div class="meta">{meta}</div>'
            + "".join(self.parts)
            + '<div id="tip"></div>'
            f'<script type="application/json" id="netsleuth-data">{data}</script>'
            f"<script>{_asset('report.js')}</script></body></html>\n"
        )

    def write(self, path: Path) -> int:
        """Written whole or not at all (outpaths.atomic_output): a full disk or a signal
        midway left a cut report where an earlier one was (helper-52)."""
        data = self.render().encode()
        with atomic_output(str(path)) as fh:
            fh.write(data)
        return len(data)


def _finding_rows(findings: list[Finding]) -> list[dict[str, Any]]:
    return [
        {
            "id": f.id,
            "severity": f.severity.label,
            "count": f.count,
            "summary": f.summary,
            "evidence": f.evidence,
        }
        for f in findings
    ]


def _bars(labels: list[str], values: list[int], unit: str) -> dict[str, Any]:
    return {"kind": "bars", "labels": labels, "values": values, "unit": unit}


def _series(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [_num(float(v)) for v in values]


def record_page(rec: Recording, source: str) -> Page:
    """The page of a Recording read with max_columns=MAX_COLUMNS (already bucketed)."""
    n = len(rec.times)
    step = float(rec.meta.get("interval", "1"))
    start = rec.times[0] - step * rec.per if n else 0.0  # the first interval's start
    times = [round(t - start, 3) for t in rec.times]
    page = Page(f"netsleuth report: {rec.meta.get('host', source)}")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(start))
    page.meta = [
        f"{rec.samples} samples every {step:g} s from {stamp}",
        f"kernel {rec.meta.get('kernel') or '?'}",
        f"{len(rec.cpus)} CPUs",
        f"source {Path(source).name}",
        f"netsleuth {__version__}",
    ]
    for note in rec.notes:
        page.parts.append(f'<div class="note">{html.escape(note)}</div>')
    bucket_note = (
        f"each column is {rec.per} samples (their maximum)"
        if rec.per > 1
        else "one column a sample"
    )
    spans = [
        dict(f, first=round(f["first"] - start, 3), last=round(f["last"] - start, 3))
        for f in rec.findings
    ]
    page.heading("Findings on the timeline", "hover a bar for its summary")
    page.chart(
        {
            "kind": "timeline",
            "spans": spans,
            "start": 0.0,
            "end": times[-1] if n else 1.0,
            "step": step,
        },
        zoomable=True,
    )
    page.findings([dict(s, **{"from": s["first"], "to": s["last"]}) for s in spans], when=True)
    for column, title, unit, note in HEATMAPS:
        page.heading(title, f"{note}; {bucket_note}")
        page.chart(
            {
                "kind": "heatmap",
                "metric": column,
                "times": times,
                "rows": rec.cpus,
                "label": "CPU",
                "unit": unit,
                "values": [_series(rec.cpu[column][:, i]) for i in range(len(rec.cpus))],
            }
        )
    page.heading("Softnet: backlog drops and time squeezes (all CPUs, per second)")
    page.chart(
        {
            "kind": "lines",
            "times": times,
            "unit": "/s",
            "series": [
                {"name": col, "values": _series(np.nansum(rec.cpu[col], axis=1))}
                for col in ("dropped", "time_squeeze")
            ],
        }
    )
    page.heading("RX packets per NIC queue (per second)")
    queues = sorted(rec.queues.items(), key=lambda kv: -np.nansum(kv[1]))[:MAX_QUEUE_SERIES]
    if queues:
        page.chart(
            {
                "kind": "lines",
                "times": times,
                "unit": "packets/s",
                "series": [{"name": q, "values": _series(v)} for q, v in queues],
            }
        )
    else:
        page.parts.append('<div class="note">no NIC reported per-queue counters</div>')
    _drops(page, rec, times, step)
    return page


def _drops(page: Page, rec: Recording, times: list[float], step: float) -> None:
    page.heading("Kernel drops by location and reason (per second)")
    if not rec.drops:
        page.parts.append('<div class="note">no drops recorded (record --drops traces them)</div>')
        return
    by: dict[str, npt.NDArray[np.float64]] = defaultdict(lambda: np.zeros(len(times)))
    for (loc, reason, _proto), counts in rec.drops.items():
        by[f"{loc} {reason or '?'}"] += counts / step
    top = sorted(by, key=lambda k: -by[k].sum())
    series = [{"name": k, "values": _series(by[k])} for k in top[:MAX_DROP_SERIES]]
    if len(top) > MAX_DROP_SERIES:
        rest = sum((by[k] for k in top[MAX_DROP_SERIES:]), np.zeros(len(times)))
        series.append({"name": "other", "values": _series(rest)})
    page.chart({"kind": "lines", "times": times, "unit": "drops/s", "series": series})


def add_scan(page: Page, result: Any, heading: str) -> None:
    """Findings and packet kinds of a netsleuth.scan.ScanResult."""
    page.heading(f"{heading}: findings", f"{result.packets:,} packets")
    page.findings(_finding_rows(result.findings))
    s = result.summary.to_json()
    page.heading(f"{heading}: packets by kind")
    page.row(
        [
            (f"by {key}", _bars(list(s[key]), [int(v) for v in s[key].values()], "packets"))
            for key in ("link", "l3", "tunnels")
            if s.get(key)
        ]
    )


def add_steer(page: Page, result: Any, heading: str) -> None:
    """Findings, packet kinds and per-queue / per-CPU bars of a steering.run.SteerResult."""
    received = f"{result.packets:,} packets"
    if result.sent[0]:
        received += f"; {result.sent[0]:,} sent by the capturing host, left out"
    if result.copies[0]:
        received += f"; {result.copies[0]:,} copies from a second device, left out"
    page.heading(f"{heading}: findings", received)
    page.findings(_finding_rows(result.findings))
    q = result.queues.packets
    charts = [
        (
            f"packets per RX queue (RSS): max/mean {result.queues.max_over_mean():.2f}, "
            f"{result.rss_keys:,} distinct hashes",
            _bars([str(i) for i in range(len(q))], [int(v) for v in q], "packets"),
        )
    ]
    if result.rps is not None and result.cpus is not None:
        cpus = list(result.rps.cpus)
        charts.append(
            (
                f"packets per CPU (RPS): max/mean {result.cpus.max_over_mean():.2f}, "
                f"{result.rps_keys:,} distinct hashes",
                _bars(
                    [str(c) for c in cpus], [int(result.cpus.packets[c]) for c in cpus], "packets"
                ),
            )
        )
    if result.tunnels:
        kinds = result.tunnels
        charts.append(
            ("packets by kind", _bars(list(kinds), [int(v) for v in kinds.values()], "packets"))
        )
    page.heading(f"{heading}: where the packets land")
    page.row(charts)
