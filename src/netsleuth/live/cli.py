"""The `scan --live` options and their run: kept here so cli.py only wires them in.
Imports nothing heavy at start-up (click only); the rest is imported when --live is used."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from netsleuth.clitypes import Seconds

if TYPE_CHECKING:
    from netsleuth.bpf import Insn
    from netsleuth.live.window import Rotation

BLOCK = 4 << 20  # ring block: one decode per few thousand frames at high rates
SEVERITIES = ["info", "warning", "critical"]


def live_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option(
            "--live",
            metavar="IFACE",
            default=None,
            help="Read frames from this interface (AF_PACKET TPACKET_V3 ring; root).",
        ),
        click.option(
            "--duration",
            type=Seconds(0, min_open=True),
            default=None,
            help="With --live: stop after S seconds (default: at Ctrl-C, SIGTERM or SIGHUP).",
        ),
        click.option(
            "--interval",
            type=Seconds(0.1, 3600),
            default=1.0,
            show_default=True,
            help="With --live: seconds between summaries (rate, kernel drops).",
        ),
        click.option(
            "--trigger",
            type=click.Choice(SEVERITIES),
            default="critical",
            show_default=True,
            help="With --live --export: write the evidence on the first finding at or above.",
        ),
        click.option(
            "--before",
            type=Seconds(0, 3600),
            default=5.0,
            show_default=True,
            help="With --live --export: seconds of frames kept before the trigger.",
        ),
        click.option(
            "--after",
            type=Seconds(0, 3600),
            default=2.0,
            show_default=True,
            help="With --live --export: seconds of frames written after the trigger.",
        ),
        click.option(
            "--window-mb",
            type=click.IntRange(1, 4096),
            default=64,
            show_default=True,
            help="With --live --export: byte cap of the frames kept in memory (MiB).",
        ),
        click.option(
            "--rotate",
            metavar="SIZE|SECONDS",
            default=None,
            help="With --live --export: keep watching and write a new file per trigger "
            "(FILE-1.pcapng, FILE-2.pcapng, ...), a file closed when it reaches SIZE "
            "(100MB, 64MiB) or spans SECONDS (30s, 5m, 1h) and the evidence going on in the "
            "next, like tcpdump -C/-G.",
        ),
        click.option(
            "--rotate-files",
            type=click.IntRange(1, 100000),
            default=None,
            metavar="N",
            help="With --rotate: keep at most N files, removing the oldest (tcpdump -W) "
            "[default: 10].",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, 64),
            default=None,
            help="Processes: with --live, sharing the interface (PACKET_FANOUT_HASH; the "
            "report numbers frames worker by worker, worker 0's first: see "
            "live.frames_by_worker) [default: 1]; with capture files, spread over them, a "
            "large pcap or pcapng split into ranges, the same result [default: the usable "
            "CPUs; inputs under 64 MiB in all stay in one process].",
        ),
        click.option("--promisc", is_flag=True, help="With --live: promiscuous mode."),
        click.option(
            "--ring-mb",
            type=click.IntRange(8, 4096),
            default=64,
            show_default=True,
            help="With --live: ring size per worker in MiB (4 MiB blocks).",
        ),
        click.option(
            "--filter",
            "bpf_filter",
            default=None,
            metavar="EXPR",
            help="With --live: tcpdump filter, or inner.src/inner.dst/inner.host IPv4 or IPv6 "
            "CIDR and inner.proto NAME terms (with --encap), compiled to BPF in the kernel.",
        ),
        click.option(
            "--encap",
            default="",
            metavar="LIST",
            help="With --filter inner.*: the encapsulation, e.g. vlan,gre-teb (`netsleuth bpf`).",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def scan_live(
    *,
    live: str,
    fmt: str,
    fail_on: str | None,
    tunnel_depth: int,
    only: tuple[str, ...],
    min_severity: str,
    export_path: str | None,
    duration: float | None,
    interval: float,
    trigger: str,
    before: float,
    after: float,
    window_mb: int,
    rotate: str | None,
    rotate_files: int | None,
    workers: int | None,
    promisc: bool,
    ring_mb: int,
    bpf_filter: str | None,
    encap: str,
) -> int:
    from netsleuth.capture.ring import RingConfig
    from netsleuth.cliutil import check_ifname, stdout_console
    from netsleuth.findings import Severity
    from netsleuth.findings.select import fail_exit, select
    from netsleuth.live.run import run_live, stop_on_signals
    from netsleuth.live.vigil import LiveOptions
    from netsleuth.outpaths import require_writable_folder
    from netsleuth.report.jsonout import scan_document

    # "eth0:1" reads eth0: the kernel drops an alias's part after the colon.
    check_ifname(live, "--live")
    program = _program(bpf_filter, encap, live)
    opts = LiveOptions(
        live,
        duration=duration,
        interval=interval,
        trigger=max(Severity.parse(trigger), Severity.parse(min_severity)),
        only=only,
        export=export_path,
        before=before,
        after=after,
        rotation=rotation(rotate, rotate_files, export_path),
        window_bytes=window_mb << 20,
        tunnel_depth=tunnel_depth,
        ring=RingConfig(
            block_size=BLOCK, blocks=max(2, (ring_mb << 20) // BLOCK), promisc=promisc, bpf=program
        ),
    )
    if export_path is not None:  # after the arguments are checked (--rotate)
        require_writable_folder(export_path)
    sink = _sink(fmt, live)
    floor = Severity.parse(min_severity)

    def shown(ev: dict[str, Any]) -> None:
        """--only and --min-severity apply to the findings as they appear too."""
        f = ev.get("finding")
        if f is None or select([f], only=only, min_severity=floor):
            sink(ev)

    workers = workers or 1  # --live: one worker unless asked
    what = f"{workers} workers" if workers > 1 else "1 worker"
    try:
        with stop_on_signals() as stop:
            result = run_live(
                opts,
                shown,
                workers=workers,
                stop=stop,
                on_ready=lambda: click.echo(
                    f"netsleuth: reading {live} ({what}); Ctrl-C ends and reports", err=True
                ),
            )
    finally:
        sink.close()
    scan = result.scan
    scan.findings = select(scan.findings, only=only, min_severity=floor)
    for failed in scan.failed_inputs:
        click.echo(f"netsleuth: {failed.error}", err=True)
    if fmt == "json":
        doc = scan_document(scan)
        doc = {
            "netsleuth": doc.pop("netsleuth"),
            "command": doc.pop("command"),
            "event": "report",
            "live": result.to_json(),
            **doc,
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        from netsleuth.report.text import render_scan

        render_scan(stdout_console(), scan)
        k = result.kernel
        click.echo(
            f"\nkernel: {k.packets:,} frames reached the socket, {k.drops:,} dropped, ring "
            f"frozen {k.freeze_q:,} times; {result.cpu_s:.2f} s CPU in {result.elapsed_s:.1f} s"
        )
        if result.workers > 1:
            spans = ", ".join(
                f"worker {s['worker']} "
                + (
                    f"{s['first_frame']:,}-{s['first_frame'] + s['frames'] - 1:,}"
                    if s["frames"]
                    else "none"
                )
                for s in result.spans
            )
            click.echo(f"frames by worker (report numbering): {spans}")
        for e in result.evidence:
            click.echo(
                f"evidence: {e['packets']} packet(s) in {e['path']} ({', '.join(e['trigger'])})"
            )
    if scan.failed_inputs:
        return 2
    return fail_exit(scan.findings, fail_on)


def _program(expr: str | None, encap: str, ifname: str) -> list[Insn] | None:
    """--filter as the classic BPF program the ring takes, or None without --filter."""
    if expr is None:
        return None
    if not expr.strip():
        from netsleuth.errors import InputError

        # Read as no filter before: every frame, when the user asked for a filter.
        raise InputError("--filter", "an empty filter: leave --filter out to read every frame")
    from netsleuth.bpf import compile_filter
    from netsleuth.capture.ring import interface_linktype

    # For the frames this interface gives: the offsets differ behind another link.
    return compile_filter(expr, encap, linktype=interface_linktype(ifname)).program


SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
SIZE_UNITS |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
TIME_UNITS = {"s": 1, "m": 60, "h": 3600}
MIN_SIZE, MAX_SIZE = 64 << 10, 1 << 40  # a file holds at least a few jumbo frames
MIN_SECONDS, MAX_SECONDS = 1, 7 * 86400
ROTATE_FILES = 10


def rotation(text: str | None, files: int | None, export: str | None) -> Rotation | None:
    """--rotate SIZE|SECONDS and --rotate-files N as a Rotation (live/window.py), or None
    without --rotate. Refuses (InputError, exit 2) what would not make sense: no unit,
    a size under 64 KiB or over 1 TiB, a time under 1 s or over 7 days."""
    from netsleuth.errors import InputError
    from netsleuth.live.window import Rotation

    if text is None:
        if files is not None:
            raise InputError("--rotate-files", "goes with --rotate SIZE|SECONDS")
        return None
    if export is None:
        raise InputError("--rotate", "rotates the evidence files: give --export FILE.pcapng")
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]+)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in SIZE_UNITS | TIME_UNITS:
        raise InputError(
            "--rotate", f"{text!r}: give a size (100MB, 64MiB) or a time (30s, 5m, 1h)"
        )
    value = float(m.group(1))
    keep = ROTATE_FILES if files is None else files
    if unit in TIME_UNITS:
        seconds = value * TIME_UNITS[unit]
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            raise InputError("--rotate", f"{text!r}: a file's time must be from 1 s to 7 days")
        return Rotation(max_seconds=seconds, max_files=keep)
    size = int(value * SIZE_UNITS[unit])
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise InputError("--rotate", f"{text!r}: a file's size must be from 64 KiB to 1 TiB")
    return Rotation(max_bytes=size, max_files=keep)


def _sink(fmt: str, ifname: str) -> Any:
    from netsleuth.cliutil import stdout_console
    from netsleuth.report.live_view import JsonLines, LiveTable, PlainLines

    if fmt == "json":
        return JsonLines()
    console = stdout_console()
    if console.is_terminal:
        return LiveTable(console, ifname)
    return PlainLines(console)
