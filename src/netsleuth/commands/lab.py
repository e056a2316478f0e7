"""`netsleuth lab replay` and `lab incident`: frames replayed into two network namespaces
this run creates and removes, and what this kernel did with each (root)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from netsleuth.cliutil import stdout_console
from netsleuth.commands.common import print_json
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.findings.select import fail_exit
from netsleuth.sources.cpulist import uint

if TYPE_CHECKING:
    from netsleuth.lab.incidents import IncidentReport
    from netsleuth.lab.replay import LabReport
    from netsleuth.lab.rps import RpsReport


@dataclass(frozen=True)
class ReplayOptions:
    capture: str
    limit: int
    frame_list: str | None
    keep_addresses: bool
    listen: tuple[str, ...]
    mtu: int
    fmt: str
    fail_on: str | None


@dataclass(frozen=True)
class Replayed:
    report: LabReport
    findings: list[Finding]

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document

        return document("lab replay", self.findings, **self.report.to_json())


def listen_specs(specs: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """--listen tcp/PORT or udp/PORT, repeated."""
    out = []
    for spec in specs:
        proto, sep, port = spec.lower().partition("/")
        number = uint(port, 65536)  # int() raised on 'tcp/²' and on 4,300 digits or more
        if not sep or proto not in ("tcp", "udp") or number is None:
            raise InputError("--listen", f"{spec[:40]!r}: use tcp/PORT or udp/PORT")
        out.append((proto, number))
    return tuple(out)


def replay(opts: ReplayOptions) -> Replayed:
    from netsleuth.lab.replay import Options, findings, parse_frame_list, replay_file
    from netsleuth.lab.sandbox import require_netns

    try:
        # '' names no frame: refused, not read as --frames left out (every frame replayed).
        wanted = None if opts.frame_list is None else parse_frame_list(opts.frame_list)
    except ValueError as err:
        raise InputError("--frames", str(err)) from None
    lab_opts = Options(opts.limit, wanted, opts.keep_addresses, listen_specs(opts.listen), opts.mtu)
    require_netns()
    progress = _progress() if opts.fmt == "text" and sys.stderr.isatty() else None
    report = replay_file(opts.capture, lab_opts, progress)
    if progress is not None:
        click.echo("\r\033[K", err=True, nl=False)
    return Replayed(report, findings(report, report.symbols))


def _progress() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            click.echo(f"\rreplaying frame {done:,}/{total:,}", err=True, nl=False)

    return show


def execute_replay(opts: ReplayOptions) -> int:
    result = replay(opts)
    if opts.fmt == "json":
        print_json(result.to_json())
    else:
        from netsleuth.report.lab_text import render_lab

        title = f"netsleuth lab replay {opts.capture}"
        render_lab(stdout_console(), result.report, result.findings, title)
    return fail_exit(result.findings, opts.fail_on)


@dataclass(frozen=True)
class IncidentOptions:
    name: str
    fmt: str


@dataclass(frozen=True)
class Incident:
    """An incident run on this kernel: the RPS experiment (stgw-rps) or a replayed
    scenario with its findings."""

    rps: RpsReport | None = None
    replayed: IncidentReport | None = None
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document

        body = self.rps if self.rps is not None else self.replayed
        assert body is not None
        return document("lab incident", list(self.findings), **body.to_json())


def incident(opts: IncidentOptions) -> Incident:
    from netsleuth.lab.sandbox import require_netns

    require_netns()
    if opts.name == "stgw-rps":
        from netsleuth.lab.rps import run_rps

        return Incident(rps=run_rps())
    from netsleuth.lab.incidents import run_incident
    from netsleuth.lab.replay import findings

    rep = run_incident(opts.name)
    return Incident(replayed=rep, findings=tuple(findings(rep.lab, rep.lab.symbols)))


def execute_incident(opts: IncidentOptions) -> int:
    result = incident(opts)
    if opts.fmt == "json":
        print_json(result.to_json())
    elif result.rps is not None:
        from netsleuth.report.lab_text import render_rps

        render_rps(stdout_console(), result.rps)
    else:
        from netsleuth.report.lab_text import render_incident

        assert result.replayed is not None
        render_incident(stdout_console(), result.replayed, list(result.findings))
    return 0
