"""The `record` loop: sample the receive path every interval, store rates, findings and
(with --drops) the kernel's drop groups, expire what is older than the retention."""

from __future__ import annotations

import math
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netsleuth import __version__
from netsleuth.findings import Finding
from netsleuth.host.doctor_rules import rate_findings
from netsleuth.host.rates import rates
from netsleuth.host.sample import Sample, parse_sample
from netsleuth.record.schema import open_db
from netsleuth.record.store import DropRow, Writer

# One signal handling for every long-running command: the first SIGINT/SIGTERM/SIGHUP ends the run
# at the next poll, a second one interrupts.
from netsleuth.signals import stop_on_signals
from netsleuth.sources.hostfs import Snapshot, read_live, read_snapshot

EXPIRE_EVERY = 60  # samples between retention passes
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_retain(text: str) -> float:
    """'7d', '12h', '30m', '90s' or plain seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 7d, 12h, 30m or 90s")
    return float(m.group(1)) * UNITS[m.group(2) or "s"]


@dataclass(frozen=True, slots=True)
class Committed:
    """What the CLI prints after each sample is on disk."""

    number: int
    t: float
    findings: list[Finding]


@dataclass
class Recorder:
    writer: Writer
    read: Callable[[], Snapshot]
    retain: float | None
    on_commit: Callable[[Committed], None] | None
    prev: Sample
    n: int = 0

    def step(self, drops: list[DropRow], drop_findings: list[Finding]) -> None:
        # Sample times are monotonic (rates divide by a true interval whatever NTP or an
        # operator does to the wall clock); the wall clock only stamps the stored row.
        cur = parse_sample(self.read(), time.monotonic())
        t = time.time()
        if cur.time <= self.prev.time:
            self.prev = cur  # no time passed: no rate for this interval
            return
        r = rates(self.prev, cur)
        findings = rate_findings(r, cur) + drop_findings
        self.writer.add(t, r, findings, drops)
        self.prev = cur
        self.n += 1
        if self.on_commit is not None:
            self.on_commit(Committed(self.n, t, findings))
        if self.retain is not None and self.n % EXPIRE_EVERY == 0:
            self.writer.expire(t - self.retain)


def record(
    db_path: Path,
    *,
    interval: float,
    duration: float | None,
    drops: bool = False,
    retain: float | None = None,
    root: Path | None = None,
    on_commit: Callable[[Committed], None] | None = None,
) -> int:
    """Record until `duration` passes or SIGINT/SIGTERM/SIGHUP; returns the samples stored."""
    db = open_db(db_path, create=True)
    try:
        writer = Writer(db)

        def read() -> Snapshot:
            return read_snapshot(root) if root is not None else read_live()

        first = parse_sample(read(), time.monotonic())
        writer.meta(
            host=socket.gethostname(),
            kernel=first.kernel or "",
            created_by=f"netsleuth {__version__}",
            interval=f"{interval:g}",
        )
        rec = Recorder(writer, read, retain, on_commit, first)
        if drops:
            _with_drops(rec, interval, duration)
        else:
            _plain(rec, interval, duration)
        return rec.n
    finally:
        db.close()


def _plain(rec: Recorder, interval: float, duration: float | None) -> None:
    """Samples on a grid from the start (no drift from sampling time). Points that passed
    while the process was stopped or starved (SIGSTOP, a suspend, a busy host) are skipped,
    one sample covering the gap, where catching up gave a burst of samples milliseconds
    apart whose rates are noise (helper-44): woken a whole interval or more after its point,
    the loop waits for the next one; after a sample that took past the next point, it
    waits for the first point after it. Past --duration, one last sample covers the rest."""
    start = rec.prev.time  # monotonic: a wall-clock step neither stalls nor hurries us
    last = sys.maxsize if duration is None else math.floor(duration / interval + 1e-6)
    slot, skipped = 1, False
    with stop_on_signals() as stop:
        while not stop.requested and slot <= last:
            due = start + slot * interval
            while not stop.requested and time.monotonic() < due:
                time.sleep(min(0.05, max(0.0, due - time.monotonic())))
            if stop.requested:
                break
            after = int((time.monotonic() - start) / interval) + 1  # the first point ahead
            # Once between two samples: a host so starved that every wake is an interval
            # late still gets a sample each time, not none.
            if not skipped and time.monotonic() - due >= interval and after <= last:
                slot, skipped = after, True
                continue
            skipped, taken = False, time.monotonic()
            rec.step([], [])
            slot = max(slot + 1, int((time.monotonic() - start) / interval) + 1)
            if slot > last:
                if taken >= start + last * interval:
                    break  # this sample covered the end
                slot = last  # one more, at the end or at once, covers the rest


def _with_drops(rec: Recorder, interval: float, duration: float | None) -> None:
    """The drop tracer's ticks drive the sampling: one host sample per drop interval."""
    from netsleuth.drops.rules import judge
    from netsleuth.drops.run import Tick, trace

    def on_tick(tick: Tick) -> None:
        rows = [
            DropRow(
                g.location.function if g.location else f"0x{g.address:x}",
                g.reason,
                g.protocol,
                g.count,
            )
            for g in tick.rows
        ]
        rec.step(rows, judge(tick.rows))

    trace(duration=duration, interval=interval, on_tick=on_tick)
