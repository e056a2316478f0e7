"""The netsleuth command line. Exit codes: 0 ok, 1 findings at or above --fail-on,
2 unusable input or arguments, 3 a missing privilege or kernel facility."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from netsleuth import __version__
from netsleuth.cliutil import run_guarded, stdout_console
from netsleuth.errors import InputError
from netsleuth.model import Finding, Severity

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
FAIL_ON = click.option(
    "--fail-on",
    type=click.Choice(["info", "warning", "critical"]),
    default=None,
    help="Exit 1 when a finding at or above this severity exists.",
)


def fail_exit(findings: list[Finding], fail_on: str | None) -> int:
    if fail_on is None:
        return 0
    threshold = Severity.parse(fail_on)
    return 1 if any(f.severity >= threshold for f in findings) else 0


def guarded(fn: Callable[..., int]) -> Callable[..., None]:
    """Turn NetsleuthError, I/O errors and signals into one stderr line and an exit code;
    never a traceback (cliutil.run_guarded)."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        sys.exit(run_guarded(fn, args, kwargs))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netsleuth")
def main() -> None:
    """Find where packets die and why receive load piles onto a few CPUs."""


@main.command()
@click.argument("captures", nargs=-1, required=True)
@FORMAT
@FAIL_ON
@click.option(
    "--tunnel-depth",
    type=click.IntRange(0, 8),
    default=3,
    show_default=True,
    help="How many nested tunnels to peel.",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="GLOB",
    help="Keep findings whose id matches (e.g. 'ipv4.fragment.*'); repeatable.",
)
@click.option(
    "--min-severity",
    type=click.Choice(["info", "warning", "critical"]),
    default="info",
    show_default=True,
    help="Keep findings at or above this.",
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.pcapng",
    help="Write the kept findings' packets (and whole fragment trains) to pcapng.",
)
@click.option(
    "--context",
    type=click.IntRange(0, 1000),
    default=0,
    show_default=True,
    help="With --export: also write N packets before and after each one.",
)
@guarded
def scan(
    *,
    captures: tuple[str, ...],
    fmt: str,
    fail_on: str | None,
    tunnel_depth: int,
    only: tuple[str, ...],
    min_severity: str,
    export_path: str | None,
    context: int,
) -> int:
    """Decode every packet of CAPTURES (pcap, pcapng, gzip; - for stdin) and report findings.

    --only and --min-severity filter what is shown, exported and judged by --fail-on.
    """
    from netsleuth.report.jsonout import dumps, scan_document
    from netsleuth.scan import scan as run_scan
    from netsleuth.scan import select

    if export_path:
        from netsleuth.outpaths import refuse_output_over_input, require_regular_inputs

        require_regular_inputs(
            captures, "--export reads its inputs twice: give capture files, not stdin or a pipe"
        )
        refuse_output_over_input(export_path, captures, "--export")
    with _Progress() as progress:
        result = run_scan(list(captures), tunnel_depth=tunnel_depth, progress=progress)
    result.findings = select(result.findings, only=only, min_severity=Severity.parse(min_severity))
    for failed in result.failed_inputs:
        click.echo(f"netsleuth: {failed.error}", err=True)
    exported = None
    if export_path:
        from netsleuth.report.export import export_evidence

        exported = export_evidence(result.inputs, result.findings, export_path, context=context)
    if fmt == "json":
        doc = scan_document(result)
        if exported is not None:
            doc["export"] = exported.to_json()
        click.echo(dumps(doc))
    else:
        from netsleuth.report.text import render_scan  # rich: only for text output

        render_scan(stdout_console(), result)
        if exported is not None:
            click.echo(f"\nexported {exported.packets} packet(s) to {exported.path}")
    if result.failed_inputs:
        return 2
    return fail_exit(result.findings, fail_on)


@main.command()
@FORMAT
@click.option(
    "--keep",
    type=click.Path(file_okay=False),
    default=None,
    help="Write the incident captures to this folder and keep them.",
)
@guarded
def demo(fmt: str, keep: str | None) -> int:
    """Build the three incident captures and scan them."""
    from netsleuth.demo import run_demo

    return run_demo(stdout_console(), fmt, keep)


class _Progress:
    """A transient progress line on stderr while reading, only when stderr is a terminal."""

    def __enter__(self) -> Callable[[str, int], None] | None:
        if not sys.stderr.isatty():
            self._p = None
            return None
        from rich.progress import Progress

        from netsleuth.cliutil import stderr_console

        self._p = Progress(console=stderr_console(), transient=True)
        self._p.start()
        self._tasks: dict[str, Any] = {}
        return self._update

    def _update(self, name: str, consumed: int) -> None:
        assert self._p is not None
        if name not in self._tasks:
            total = os.path.getsize(name) if os.path.isfile(name) else None
            from rich.markup import escape  # the description is a markup template

            self._tasks[name] = self._p.add_task(f"reading {escape(name)}", total=total)
        self._p.update(self._tasks[name], completed=consumed)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.stop()


@main.command("rss-hash")
@click.option(
    "--key",
    default="microsoft",
    show_default=True,
    help="microsoft, symmetric, or the key in hex (40 or 52 bytes).",
)
@click.option("--src", required=True, help="Source address (IPv4 or IPv6).")
@click.option("--dst", required=True, help="Destination address.")
@click.option("--sport", type=click.IntRange(0, 65535), default=None, help="Source port.")
@click.option("--dport", type=click.IntRange(0, 65535), default=None, help="Destination port.")
@FORMAT
@guarded
def rss_hash(
    *, key: str, src: str, dst: str, sport: int | None, dport: int | None, fmt: str
) -> int:
    """Print the Toeplitz RSS hash a NIC computes for one flow."""
    from netsleuth.report.jsonout import document, dumps
    from netsleuth.steering.toeplitz import Toeplitz, parse_key, rss_input

    try:
        k = parse_key(key)
        data = rss_input(src, dst, sport, dport)
        value = Toeplitz(k).hash(data)
    except ValueError as err:
        raise InputError("rss-hash", str(err)) from err
    if fmt == "json":
        click.echo(
            dumps(
                document(
                    "rss-hash",
                    [],
                    hash=f"{value:#010x}",
                    input=data.hex(),
                    key=key if key in ("microsoft", "symmetric") else k.hex(),
                )
            )
        )
    else:
        click.echo(f"{value:#010x}")
    return 0


def _cpu_list(text: str) -> tuple[int, ...]:
    """'0-3,8' -> (0, 1, 2, 3, 8), as /sys rps_cpus and taskset lists are written."""
    from netsleuth.host.cpulist import MAX_CPUS, parse_cpu_list

    try:
        return tuple(parse_cpu_list(text))
    except ValueError as err:
        raise InputError(
            "--rps-cpus", f"{text[:40]!r} is not a CPU list like 0-3,8 below {MAX_CPUS} ({err})"
        ) from None


def _kernel(text: str | None) -> tuple[int, int]:
    import platform

    raw = text or platform.release()
    parts = raw.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        raise InputError("--kernel", f"{raw!r} is not a version like 4.9") from None


@main.command()
@click.argument("captures", nargs=-1, required=True)
@FORMAT
@FAIL_ON
@click.option("--queues", type=click.IntRange(1, 4096), default=8, show_default=True)
@click.option(
    "--nic",
    "parse",
    type=click.Choice(["outer", "inner"]),
    default="outer",
    show_default=True,
    help="outer: tunnels hash on outer addresses (older NICs).",
)
@click.option("--nic-pptp", is_flag=True, help="With --nic inner: the NIC parses PPTP too.")
@click.option(
    "--key", default="microsoft", show_default=True, help="RSS key: microsoft, symmetric or hex."
)
@click.option(
    "--l4",
    default="tcp4,tcp6,udp4,udp6",
    show_default=True,
    help="Flow types hashed with ports (ethtool rx-flow-hash sdfn); others use addresses only.",
)
@click.option("--kernel", default=None, help="Kernel version for RPS (default: running).")
@click.option("--rps-cpus", default=None, help="Model RPS over these CPUs, e.g. 0-7.")
@click.option(
    "--seed",
    type=int,
    default=0x5EED,
    show_default=True,
    help="Seed of the modelled per-boot RPS hash secret.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Also print a what-if table: outer-only vs inner-aware NIC x RPS off / before / "
    "after GRE v1 dissection (Linux 4.9 / 4.10+), as max/mean per scenario.",
)
@click.option(
    "--from-host",
    "from_host",
    default=None,
    metavar="DEV",
    help="Read DEV's RX rings, RSS key, indirection table and hashed fields (SIOCETHTOOL) "
    "instead of --queues/--key/--l4.",
)
@guarded
def steer(
    *,
    captures: tuple[str, ...],
    fmt: str,
    fail_on: str | None,
    queues: int,
    parse: str,
    nic_pptp: bool,
    key: str,
    l4: str,
    kernel: str | None,
    rps_cpus: str | None,
    seed: int,
    from_host: str | None,
    compare: bool,
) -> int:
    """Predict per-queue (RSS) and per-CPU (RPS) receive load for CAPTURES and explain it."""
    from netsleuth.report.jsonout import document, dumps
    from netsleuth.steering.model import NicModel, RpsModel
    from netsleuth.steering.run import heaviest, steer_many
    from netsleuth.steering.run import steer as run_steer
    from netsleuth.steering.toeplitz import parse_key

    try:
        nic = NicModel(
            queues=queues,
            parse=parse,
            pptp=nic_pptp,
            key=parse_key(key),
            l4=frozenset(x for x in l4.split(",") if x),
        )
    except ValueError as err:
        raise InputError("--key", str(err)) from err
    host_notes: list[str] = []
    if from_host:
        from netsleuth.cliutil import check_ifname

        check_ifname(from_host, "--from-host")
        nic, host_notes = _nic_from_host(from_host, nic)
        for note in host_notes:
            click.echo(f"netsleuth: {from_host}: {note}", err=True)
    rps = RpsModel(_kernel(kernel), _cpu_list(rps_cpus), seed) if rps_cpus else None
    whatif = None
    if compare:
        from netsleuth.steering.compare import scenarios, summarize

        # The configured model and the six what-if scenarios in one pass over the capture.
        what_cpus = rps.cpus if rps else tuple(range(nic.queues))
        models = [(nic, rps), *scenarios(nic, what_cpus, _kernel(kernel), seed)]
        result, *others = steer_many(list(captures), models)
        if not any(i.error for i in result.inputs):
            whatif = summarize(others, what_cpus)
    else:
        result = run_steer(list(captures), nic, rps)
    for failed in (i for i in result.inputs if i.error):
        click.echo(f"netsleuth: {failed.error}", err=True)
    if fmt == "json":
        extra: dict[str, Any] = {
            "inputs": [i.to_json() for i in result.inputs],
            "config": {
                "nic": {
                    "queues": queues,
                    "parse": parse,
                    "pptp": nic_pptp,
                    "key": nic.key.hex() if from_host else key,
                    "l4": sorted(nic.l4),
                    "indirection": list(nic.indir) if nic.indir else "i % queues",
                    "from_host": from_host,
                },
                "rps": None
                if rps is None
                else {
                    "kernel": f"{rps.kernel[0]}.{rps.kernel[1]}",
                    "cpus": list(rps.cpus),
                    "seed": seed,
                },
            },
            "rss": {
                "queues": [
                    {"queue": i, "packets": int(p), "bytes": int(b)}
                    for i, (p, b) in enumerate(
                        zip(result.queues.packets, result.queues.bytes, strict=True)
                    )
                ],
                "max_over_mean": round(result.queues.max_over_mean(), 3),
                "cv": round(result.queues.cv(), 3),
                "distinct_hashes": result.rss_keys,
            },
            "flows": {"distinct": result.distinct_flows, "heaviest": heaviest(result)},
            "notes": [
                "RFS is not modelled",
                "the kernel's RPS hash secret is random per boot: modelled with --seed",
            ],
        }
        if rps is not None and result.cpus is not None:
            extra["rps"] = {
                "cpus": [
                    {
                        "cpu": c,
                        "packets": int(result.cpus.packets[c]),
                        "bytes": int(result.cpus.bytes[c]),
                    }
                    for c in rps.cpus
                ],
                "max_over_mean": round(result.cpus.max_over_mean(), 3),
                "cv": round(result.cpus.cv(), 3),
                "distinct_hashes": result.rps_keys,
            }
        if whatif is not None:
            extra["compare"] = [row.to_json() for row in whatif]
        click.echo(dumps(document("steer", result.findings, **extra)))
    else:
        from netsleuth.report.steer_text import render_compare, render_steer

        console = stdout_console()
        render_steer(console, result)
        if whatif is not None:
            render_compare(console, whatif)
    if any(i.error for i in result.inputs):
        return 2
    return fail_exit(result.findings, fail_on)


def _nic_from_host(dev: str, base: Any) -> tuple[Any, list[str]]:
    """The NicModel of a real device, or exit 3 saying plainly that it has no RSS."""
    from netsleuth.errors import FacilityError
    from netsleuth.sources.ethtool import NoRssError, read_rss
    from netsleuth.steering.fromhost import NoModelError, nic_from_rss

    try:
        return nic_from_rss(read_rss(dev), base)
    except NoRssError:
        raise FacilityError(
            f"{dev} has no RSS: its driver answers none of ETHTOOL_GRXRINGS, GRSSH, "
            "GRXFHINDIR (veth, lo and most virtual devices); every packet takes one queue. "
            "Model a NIC with --queues/--key/--l4 instead"
        ) from None
    except NoModelError as err:
        raise FacilityError(str(err)) from None
    except OSError as err:
        raise FacilityError(f"{dev}: SIOCETHTOOL failed: {err.strerror}") from None


@main.command()
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default="/",
    show_default=True,
    help="Read proc/net/tcp and tcp6 under this directory (a bundle, a chroot).",
)
@click.option("--kernel", default=None, help="Kernel version to model (default: running).")
@FORMAT
@FAIL_ON
@guarded
def listen(*, root: str, kernel: str | None, fmt: str, fail_on: str | None) -> int:
    """Model the listening-socket lookup cost per SYN from the real socket table."""
    from dataclasses import asdict
    from pathlib import Path

    from netsleuth.host.listen import model
    from netsleuth.host.listen_rules import judge
    from netsleuth.report.jsonout import document, dumps
    from netsleuth.sources.procnet import read_listeners

    listeners, notes = read_listeners(Path(root))
    for note in notes:
        click.echo(f"netsleuth: {note}", err=True)
    if not listeners and len(notes) == 2:
        raise InputError(root, "no proc/net/tcp or tcp6 here: is --root a Linux root?")
    m = model(listeners, _kernel(kernel))
    findings = judge(m)
    if fmt == "json":
        data = asdict(m)
        data["kernel"] = f"{m.kernel[0]}.{m.kernel[1]}"
        click.echo(dumps(document("listen", findings, root=root, model=data, notes=notes)))
    else:
        from netsleuth.report.text import render_findings

        console = stdout_console()
        console.print(
            f"{m.sockets:,} listening sockets, {m.ports:,} ports, {m.groups:,} "
            f"address:port groups (largest reuseport group {m.biggest_group})",
            highlight=False,
        )
        console.print(
            f"sockets walked per SYN: {m.per_syn_running:,.1f} under Linux "
            f"{m.kernel[0]}.{m.kernel[1]} (32 port-only buckets: {m.per_syn_old:,.1f},"
            f" worst {m.worst_old:,}; lhash2: {m.per_syn_new:,.1f})",
            highlight=False,
        )
        render_findings(console, findings)
    return fail_exit(findings, fail_on)


@main.command()
@click.option(
    "--duration",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds to trace; 0 traces until Ctrl-C (SIGINT) or SIGTERM.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.2),
    default=None,
    help="Also show the drops of every INTERVAL seconds while tracing.",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    help="protocol=NAME|NUMBER (802.2, ipv4, 0x86dd) or reason=NAME (NO_SOCKET); "
    "repeat a key for either value.",
)
@click.option("--top", type=click.IntRange(1), default=20, show_default=True)
@FORMAT
@FAIL_ON
@guarded
def drops(
    *,
    duration: float,
    interval: float | None,
    filters: tuple[str, ...],
    top: int,
    fmt: str,
    fail_on: str | None,
) -> int:
    """Trace packets the kernel drops (skb:kfree_skb): where, why and which protocol."""
    from netsleuth.drops.run import parse_filters, trace
    from netsleuth.report.jsonout import document, dumps

    try:
        wanted = parse_filters(filters)
    except ValueError as err:
        raise InputError("--filter", str(err)) from None
    if os.geteuid() != 0:
        from netsleuth.errors import FacilityError

        raise FacilityError(
            "drops needs root (CAP_SYS_ADMIN for a tracefs instance, CAP_SYSLOG for "
            "kernel symbols): run it with sudo"
        )
    view = None
    on_tick = None
    if interval and fmt == "text":
        from netsleuth.report.drops_text import TickView

        view = TickView(stdout_console(), top)
        on_tick = view
    try:
        report = trace(
            duration=duration or None, filters=wanted, interval=interval, on_tick=on_tick
        )
    finally:
        if view is not None:
            view.close()
    findings = report.findings
    if fmt == "json":
        doc = document("drops", findings, **report.to_json(top), notes=report.notes)
        click.echo(dumps(doc))
    else:
        from netsleuth.report.drops_text import render_drops

        render_drops(stdout_console(), report, top)
    return fail_exit(findings, fail_on)


@main.command()
@click.option("--bundle", type=click.Path(exists=True), default=None, help="Diagnose a bundle.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="One sample from files under this directory (static checks only).",
)
@click.option("--samples", type=click.IntRange(1, 3600), default=3, show_default=True)
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=1.0, show_default=True)
@FORMAT
@FAIL_ON
@guarded
def doctor(
    *,
    bundle: str | None,
    root: str | None,
    samples: int,
    interval: float,
    fmt: str,
    fail_on: str | None,
) -> int:
    """Sample the receive path (NIC, IRQs, softirqs, softnet, MIBs) and diagnose it."""
    from pathlib import Path

    from netsleuth import doctor as doc

    if bundle and root:
        raise InputError("--bundle", "give --bundle or --root, not both")
    if bundle:
        d = doc.doctor_bundle(Path(bundle))
    elif root:
        d = doc.doctor_root(Path(root))
    else:
        if samples >= 2 and fmt == "text" and sys.stderr.isatty():
            click.echo(f"sampling {samples} times, {interval:g} s apart...", err=True)
        d = doc.doctor_live(samples, interval)
    return _doctor_output(d, fmt, fail_on)


def _doctor_output(d: Any, fmt: str, fail_on: str | None) -> int:
    from netsleuth.report.jsonout import document, dumps

    if fmt == "json":
        from netsleuth.report.doctor_text import rates_json

        last = d.samples[-1]
        click.echo(
            dumps(
                document(
                    "doctor",
                    d.findings,
                    source=d.source,
                    samples=len(d.samples),
                    kernel=last.kernel,
                    cpus=last.cpus,
                    rates=rates_json(d.rates),
                    notes=d.notes,
                )
            )
        )
    else:
        from netsleuth.report.doctor_text import render_doctor

        render_doctor(stdout_console(), d)
    return fail_exit(d.findings, fail_on)


@main.command()
@click.option("-o", "--output", required=True, help="Bundle to write: FILE.tar.gz or a directory.")
@click.option("--duration", type=click.FloatRange(0), default=2.0, show_default=True)
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=1.0, show_default=True)
@guarded
def collect(*, output: str, duration: float, interval: float) -> int:
    """Write a bundle of receive-path readings for `doctor --bundle` elsewhere."""
    from pathlib import Path

    from netsleuth import doctor as doc

    count = max(2, int(duration / interval) + 1)
    n = doc.collect(Path(output), count, interval)
    click.echo(f"wrote {output}: {n} samples, {interval:g} s apart", err=True)
    return 0


@main.command()
@click.option("--interval", type=click.FloatRange(0.2, 3600), default=1.0, show_default=True)
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after COUNT intervals.")
@guarded
def watch(*, interval: float, count: int | None) -> int:
    """Per-second view of the receive path (softirqs, softnet, devices, queues)."""
    import time

    from netsleuth.host.doctor_rules import rate_findings
    from netsleuth.host.rates import rates
    from netsleuth.host.sample import parse_sample
    from netsleuth.report.watch_view import frame, print_lines
    from netsleuth.sources.hostfs import read_live

    console = stdout_console()
    prev = parse_sample(read_live(), time.time())
    live = None
    if console.is_terminal:
        from rich.live import Live

        live = Live(console=console, auto_refresh=False, transient=False)
        live.start()
    n = 0
    try:
        while count is None or n < count:
            time.sleep(max(0.0, prev.time + interval - time.time()))
            cur = parse_sample(read_live(), time.time())
            r = rates(prev, cur)
            findings = rate_findings(r, cur)
            if live is not None:
                live.update(frame(r, findings), refresh=True)
            else:
                print_lines(console, r, findings)
            prev = cur
            n += 1
    finally:
        if live is not None:
            live.stop()
    return 0
