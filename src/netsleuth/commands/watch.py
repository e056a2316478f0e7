"""`netsleuth watch`: the receive path second by second (softirqs, softnet, devices,
queues), with the rate rules' findings highlighted."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netsleuth.cliutil import stdout_console

if TYPE_CHECKING:
    from netsleuth.findings import Finding
    from netsleuth.host.rates import Rates
    from netsleuth.host.sample import Sample


@dataclass(frozen=True)
class Options:
    interval: float
    count: int | None


@dataclass(frozen=True)
class Tick:
    """One interval: the rates between two readings and the findings they raise."""

    rates: Rates
    findings: list[Finding]


def run(opts: Options) -> Generator[Tick, None, None]:
    """Read the host now, then every --interval seconds (on a fixed schedule: a slow
    reading does not push the next one later), yielding each interval, --count times or
    until stopped."""
    from netsleuth.host.sample import parse_sample
    from netsleuth.sources.hostfs import read_live

    # Monotonic sample times: rates divide by a true interval, and the pause to the next
    # reading is not stretched, whatever NTP or an operator does to the wall clock (with
    # time.time() a step back raised out of rates() or paused watch for the step).
    return _ticks(opts, parse_sample(read_live(), time.monotonic()))


def _ticks(opts: Options, prev: Sample) -> Generator[Tick, None, None]:
    from netsleuth.host.doctor_rules import rate_findings
    from netsleuth.host.rates import rates
    from netsleuth.host.sample import parse_sample
    from netsleuth.sources.hostfs import read_live

    n = 0
    while opts.count is None or n < opts.count:
        time.sleep(max(0.0, prev.time + opts.interval - time.monotonic()))
        cur = parse_sample(read_live(), time.monotonic())
        r = rates(prev, cur)
        yield Tick(r, rate_findings(r, cur))
        prev = cur
        n += 1


def execute(opts: Options) -> int:
    from netsleuth.report.watch_view import frame, print_lines

    console = stdout_console()
    ticks = run(opts)
    live = None
    if console.is_terminal:
        from rich.live import Live

        live = Live(console=console, auto_refresh=False, transient=False)
        live.start()
    try:
        for tick in ticks:
            if live is not None:
                live.update(frame(tick.rates, tick.findings), refresh=True)
            else:
                print_lines(console, tick.rates, tick.findings)
    finally:
        ticks.close()
        if live is not None:
            live.stop()
    return 0
