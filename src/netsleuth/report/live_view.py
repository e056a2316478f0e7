"""What `scan --live` shows while it runs: JSON lines (one finding or summary per line,
for a pipeline), plain lines in a pipe, or a live table on a terminal (counts by finding
id, rate, kernel drops, last frame)."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from netsleuth import __version__
from netsleuth.findings import Finding

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

Event = dict[str, Any]


def event_document(ev: Event) -> dict[str, Any]:
    """An event as a JSON-lines document: the contract's netsleuth, command, findings."""
    doc: dict[str, Any] = {"netsleuth": __version__, "command": "scan"}
    doc.update({k: v for k, v in ev.items() if k != "finding"})
    finding = ev.get("finding")
    doc["findings"] = [finding.to_json()] if isinstance(finding, Finding) else []
    return doc


class JsonLines:
    def __call__(self, ev: Event) -> None:
        sys.stdout.write(json.dumps(event_document(ev)) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        pass


class PlainLines:
    """One line per event, for a pipe or a log."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, ev: Event) -> None:
        stamp = time.strftime("%H:%M:%S")
        kind = ev["event"]
        if kind == "finding":
            f: Finding = ev["finding"]
            layer = f" [{f.layer}]" if f.layer else ""
            line = f"{stamp} {f.severity.label} {f.id}{layer}: {f.summary}"
        elif kind == "summary":
            k = ev["kernel"]["total"]
            line = (
                f"{stamp} {ev['packets']:,} packets, {ev['rate_pps']:,.0f}/s, kernel drops "
                f"{k['drops']:,}" + (f" (worker {ev['worker']})" if ev["worker"] else "")
            )
        else:
            ids = ", ".join(ev["trigger"])
            line = f"{stamp} evidence: {ev['packets']} packets to {ev['path']} ({ids})"
        self.console.print(line, highlight=False, soft_wrap=True)

    def close(self) -> None:
        pass


class LiveTable:
    """A terminal table redrawn on every event."""

    def __init__(self, console: Console, ifname: str) -> None:
        from rich.live import Live

        self.ifname = ifname
        self.counts: dict[str, tuple[str, int]] = {}
        self.stats: dict[int, Event] = {}
        self.evidence: list[str] = []
        self.live: Live = Live(console=console, auto_refresh=False, transient=False)
        self.live.start()

    def __call__(self, ev: Event) -> None:
        if ev["event"] == "finding":
            f: Finding = ev["finding"]
            key = f"{f.id} [{f.layer}]" if f.layer else f.id
            self.counts[key] = (f.severity.label, f.count)
        elif ev["event"] == "summary":
            self.stats[ev["worker"]] = ev
            for key, n in ev["counts"].items():
                sev = self.counts.get(key, ("", 0))[0]
                self.counts[key] = (sev, max(n, self.counts.get(key, ("", 0))[1]))
        else:
            self.evidence.append(f"{ev['packets']} packets to {ev['path']}")
        self.live.update(self._table(), refresh=True)

    def _table(self) -> Table:
        from rich.table import Table

        packets = sum(s["packets"] for s in self.stats.values())
        rate = sum(s["rate_pps"] for s in self.stats.values())
        drops = sum(s["kernel"]["total"]["drops"] for s in self.stats.values())
        last = max((s["last_frame_ns"] for s in self.stats.values()), default=0)
        when = time.strftime("%H:%M:%S", time.localtime(last / 1e9)) if last else "-"
        t = Table(
            title=f"{self.ifname}: {packets:,} packets, {rate:,.0f}/s, "
            f"kernel drops {drops:,}, last frame {when}",
            caption="; ".join(self.evidence) or None,
        )
        t.add_column("finding")
        t.add_column("severity")
        t.add_column("count", justify="right")
        for key, (sev, n) in sorted(self.counts.items(), key=lambda kv: -kv[1][1]):
            t.add_row(key, sev, f"{n:,}")
        return t

    def close(self) -> None:
        self.live.stop()
