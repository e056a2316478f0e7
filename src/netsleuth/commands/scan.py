"""`netsleuth scan`: decode every packet of the captures and report findings; with --lab,
replay the findings' frames on this kernel; with --export, write their packets; with
--live, read an interface instead (netsleuth.live.cli)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from netsleuth.cliutil import stdout_console
from netsleuth.commands.common import Progress, print_json, say, write_html
from netsleuth.errors import InputError
from netsleuth.findings import Severity
from netsleuth.findings.select import fail_exit, select

if TYPE_CHECKING:
    from netsleuth.report.export import ExportSummary
    from netsleuth.scan import ScanResult


@dataclass(frozen=True)
class Options:
    captures: tuple[str, ...]
    fmt: str
    fail_on: str | None
    tunnel_depth: int
    only: tuple[str, ...]
    min_severity: str
    export_path: str | None
    context: int
    html_path: str | None
    in_lab: bool
    dask_address: str | None  # --dask: the jobs run on a Dask cluster (netsleuth.cluster)
    # --live IFACE and its options (live.cli.live_options), --workers among them.
    live_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_click(cls, opts: dict[str, Any]) -> Options:
        """The scan options by name; the rest are the live options."""
        mine = [k for k in cls.__dataclass_fields__ if k != "live_options"]
        return cls(**{k: opts.pop(k) for k in mine}, live_options=opts)


@dataclass
class ScanReport:
    """The scan, its findings already selected by --only and --min-severity, and what
    --export wrote."""

    result: ScanResult
    exported: ExportSummary | None = None

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import scan_document

        doc = scan_document(self.result)
        if self.exported is not None:
            doc["export"] = self.exported.to_json()
        return doc


def check(opts: Options) -> None:
    """Refuse what cannot work before reading anything (exit 2, or 3 for --lab off root)."""
    if not opts.captures:
        raise InputError("scan", "give one or more CAPTURES (- for stdin), or --live IFACE")
    if opts.in_lab:
        from netsleuth.lab.sandbox import require_netns

        if "-" in opts.captures:
            raise InputError("-", "--lab reads its inputs twice: give capture files, not stdin")
        require_netns()
    if opts.export_path:
        from netsleuth.outpaths import refuse_output_over_input, require_regular_inputs

        require_regular_inputs(
            opts.captures,
            "--export reads its inputs twice: give capture files, not stdin or a pipe",
        )
        refuse_output_over_input(opts.export_path, opts.captures, "--export")
    if opts.html_path:
        from netsleuth.outpaths import refuse_one_file_twice, refuse_output_over_input

        refuse_output_over_input(opts.html_path, opts.captures, "--html")
        if opts.export_path:
            refuse_one_file_twice([("--export", opts.export_path), ("--html", opts.html_path)])


def run(opts: Options) -> ScanReport:
    from netsleuth.cores import usable_cores
    from netsleuth.scan import scan as run_scan

    check(opts)
    with Progress() as progress:
        if opts.dask_address is not None:
            from netsleuth.cluster import scan_dask

            result = scan_dask(
                opts.captures,
                address=opts.dask_address,
                tunnel_depth=opts.tunnel_depth,
                progress=progress,
            )
        else:
            result = run_scan(
                list(opts.captures),
                tunnel_depth=opts.tunnel_depth,
                progress=progress,
                workers=opts.live_options["workers"] or usable_cores(),
            )
    result.findings = select(
        result.findings, only=opts.only, min_severity=Severity.parse(opts.min_severity)
    )
    for failed in result.failed_inputs:
        say(f"netsleuth: {failed.error}")
    if opts.in_lab:
        from netsleuth.lab.scanlab import annotate

        for note in annotate(result):
            say(f"netsleuth lab: {note}")
    report = ScanReport(result)
    if opts.export_path and _usable(result):
        from netsleuth.report.export import export_evidence

        report.exported = export_evidence(
            result.inputs, result.findings, opts.export_path, context=opts.context
        )
    return report


def execute(opts: Options) -> int:
    live = opts.live_options
    for glob in opts.only:
        # No finding id is blank: `--only ''` kept no finding, so `--fail-on` passed.
        if not glob.strip():
            raise InputError("--only", f"{glob!r} matches no finding id (e.g. 'ipv4.fragment.*')")
    if opts.dask_address is not None and (live["live"] is not None or live["workers"]):
        raise InputError("--dask", "runs on the cluster's workers: not with --live or --workers")
    if live["live"] is not None:
        return _live(opts)
    _refuse_live_only(live)
    report = run(opts)
    result = report.result
    if opts.html_path and _usable(result):
        write_html(
            opts.html_path, "netsleuth scan", lambda page, h: h.add_scan(page, result, "scan")
        )
    if opts.fmt == "json":
        print_json(report.to_json())
    else:
        from netsleuth.report.text import render_scan  # rich: only for text output

        render_scan(stdout_console(), result)
        if report.exported is not None:
            click.echo(f"\nexported {report.exported.packets} packet(s) to {report.exported.path}")
    if result.failed_inputs:
        return 2
    return fail_exit(result.findings, opts.fail_on)


def _usable(result: ScanResult) -> bool:
    """Whether an input was read: with none, there is no report to write (--html, --export)
    and the run ends with each input's error alone (exit 2)."""
    return len(result.failed_inputs) < len(result.inputs)


def _refuse_live_only(live: dict[str, Any]) -> None:
    """--live's own options given with capture files would be ignored without a word (a
    --filter the user believes applied, a --rotate that never rotates): refused (exit 2).
    Given means on the command line, not click's default (outside click: not checked)."""
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    for param in ctx.command.params:
        name = param.name or ""
        mine = name in live and name not in ("live", "workers")
        if mine and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            raise InputError(param.opts[0], "goes with --live IFACE, not capture files")


def _live(opts: Options) -> int:
    if opts.captures:
        raise InputError("--live", "give CAPTURES or --live IFACE, not both")
    if opts.in_lab or opts.html_path:
        raise InputError("--live", "--lab and --html work on capture files, not --live")
    from netsleuth.live.cli import scan_live

    return scan_live(
        fmt=opts.fmt,
        fail_on=opts.fail_on,
        tunnel_depth=opts.tunnel_depth,
        only=opts.only,
        min_severity=opts.min_severity,
        export_path=opts.export_path,
        **opts.live_options,
    )
