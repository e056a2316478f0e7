"""`netsleuth drops`: trace the packets the kernel drops (skb:kfree_skb) and group them by
location, reason and protocol (root)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsleuth.cliutil import stdout_console
from netsleuth.commands.common import print_json
from netsleuth.errors import FacilityError, InputError
from netsleuth.findings.select import fail_exit

if TYPE_CHECKING:
    from netsleuth.drops.run import Report


@dataclass(frozen=True)
class Options:
    duration: float
    interval: float | None
    filters: tuple[str, ...]
    top: int
    fmt: str
    fail_on: str | None


@dataclass(frozen=True)
class DropsResult:
    report: Report
    top: int  # groups listed

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document

        r = self.report
        return document("drops", r.findings, **r.to_json(self.top), notes=r.notes)


def require_root() -> None:
    if os.geteuid() != 0:
        raise FacilityError(
            "drops needs root (CAP_SYS_ADMIN for a tracefs instance, CAP_SYSLOG for "
            "kernel symbols): run it with sudo"
        )


def run(opts: Options) -> DropsResult:
    """Trace until --duration ends or a signal; with --interval and text output, each
    interval's drops are shown as they come."""
    from netsleuth.drops.run import parse_filters, trace

    try:
        wanted = parse_filters(opts.filters)
    except ValueError as err:
        raise InputError("--filter", str(err)) from None
    require_root()
    view = None
    if opts.interval and opts.fmt == "text":
        from netsleuth.report.drops_text import TickView

        view = TickView(stdout_console(), opts.top)
    try:
        report = trace(
            duration=opts.duration or None, filters=wanted, interval=opts.interval, on_tick=view
        )
    finally:
        if view is not None:
            view.close()
    return DropsResult(report, opts.top)


def execute(opts: Options) -> int:
    result = run(opts)
    if opts.fmt == "json":
        print_json(result.to_json())
    else:
        from netsleuth.report.drops_text import render_drops

        render_drops(stdout_console(), result.report, opts.top)
    return fail_exit(result.report.findings, opts.fail_on)
