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
HTML_REPORT = click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.html",
    help="Also write a self-contained HTML report (opens offline).",
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


def LIVE_OPTIONS(fn: Callable[..., Any]) -> Callable[..., Any]:
    """scan --live and its options (netsleuth.live)."""
    from netsleuth.live.cli import live_options

    return live_options(fn)


@main.command()
@click.argument("captures", nargs=-1, required=False)
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
@HTML_REPORT
@click.option(
    "--lab",
    "in_lab",
    is_flag=True,
    help="Replay each finding's frames on this kernel (root) and add its verdict.",
)
@LIVE_OPTIONS
@click.option(
    "--dask",
    "dask_address",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run the scan on this Dask scheduler's workers (captures on storage they all see; "
    "pip install 'netsleuth[dask]').",
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
    html_path: str | None,
    in_lab: bool,
    dask_address: str | None,
    **live: Any,
) -> int:
    """Decode every packet of CAPTURES (pcap, pcapng, gzip; - for stdin) and report findings.

    --only and --min-severity filter what is shown, exported and judged by --fail-on.
    With --live IFACE, read the interface instead (root; see the live options below).
    """
    from netsleuth.report.jsonout import dumps, scan_document
    from netsleuth.scan import scan as run_scan
    from netsleuth.scan import select

    if dask_address is not None and (live["live"] is not None or live["workers"] != 1):
        raise InputError("--dask", "runs on the cluster's workers: not with --live or --workers")
    if live["live"] is not None:
        if captures:
            raise InputError("--live", "give CAPTURES or --live IFACE, not both")
        if in_lab or html_path:
            raise InputError("--live", "--lab and --html work on capture files, not --live")
        from netsleuth.live.cli import scan_live

        return scan_live(
            fmt=fmt,
            fail_on=fail_on,
            tunnel_depth=tunnel_depth,
            only=only,
            min_severity=min_severity,
            export_path=export_path,
            **live,
        )
    if not captures:
        raise InputError("scan", "give one or more CAPTURES (- for stdin), or --live IFACE")
    if in_lab:
        from netsleuth.lab.sandbox import require_netns

        if "-" in captures:
            raise InputError("-", "--lab reads its inputs twice: give capture files, not stdin")
        require_netns()
    if export_path:
        from netsleuth.outpaths import refuse_output_over_input, require_regular_inputs

        require_regular_inputs(
            captures, "--export reads its inputs twice: give capture files, not stdin or a pipe"
        )
        refuse_output_over_input(export_path, captures, "--export")
    with _Progress() as progress:
        if dask_address is not None:
            from netsleuth.cluster import scan_dask

            result = scan_dask(
                captures, address=dask_address, tunnel_depth=tunnel_depth, progress=progress
            )
        else:
            result = run_scan(
                list(captures),
                tunnel_depth=tunnel_depth,
                progress=progress,
                workers=live["workers"],
            )
    result.findings = select(result.findings, only=only, min_severity=Severity.parse(min_severity))
    for failed in result.failed_inputs:
        click.echo(f"netsleuth: {failed.error}", err=True)
    if in_lab:
        from netsleuth.lab.scanlab import annotate

        for note in annotate(result):
            click.echo(f"netsleuth lab: {note}", err=True)
    exported = None
    if export_path:
        from netsleuth.report.export import export_evidence

        exported = export_evidence(result.inputs, result.findings, export_path, context=context)
    if html_path:
        _write_html(html_path, "netsleuth scan", lambda page, h: h.add_scan(page, result, "scan"))
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
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE.html",
    help="Where to write the demo's report [default: netsleuth-demo.html in --keep or here].",
)
@guarded
def demo(fmt: str, keep: str | None, html_path: str | None) -> int:
    """Build the three incident captures and scan them."""
    from netsleuth.demo import run_demo

    return run_demo(stdout_console(), fmt, keep, html_path)


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


def _cpu_list(text: str, option: str = "--rps-cpus") -> tuple[int, ...]:
    """'0-3,8' -> (0, 1, 2, 3, 8), as /sys rps_cpus and taskset lists are written."""
    from netsleuth.host.cpulist import MAX_CPUS, parse_cpu_list

    try:
        return tuple(parse_cpu_list(text))
    except ValueError as err:
        raise InputError(
            option, f"{text[:40]!r} is not a CPU list like 0-3,8 below {MAX_CPUS} ({err})"
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
@HTML_REPORT
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
    html_path: str | None,
) -> int:
    """Predict per-queue (RSS) and per-CPU (RPS) receive load for CAPTURES and explain it."""
    from netsleuth.report.jsonout import document, dumps
    from netsleuth.steering.model import NicModel, RpsModel
    from netsleuth.steering.run import steer as run_steer
    from netsleuth.steering.run import steer_many
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
    if html_path:
        _write_html(
            html_path, "netsleuth steer", lambda page, h: h.add_steer(page, result, "steer")
        )
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
            "flows": result.flows_json(),
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
@click.option(
    "--profile",
    "with_profile",
    is_flag=True,
    help="Live only: when a CPU is a softirq hotspot, sample its kernel stacks too "
    "(as `netsleuth profile`; root or CAP_PERFMON).",
)
@click.option(
    "--profile-duration", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True
)
@FORMAT
@FAIL_ON
@guarded
def doctor(
    *,
    bundle: str | None,
    root: str | None,
    samples: int,
    interval: float,
    with_profile: bool,
    profile_duration: float,
    fmt: str,
    fail_on: str | None,
) -> int:
    """Sample the receive path (NIC, IRQs, softirqs, softnet, MIBs) and diagnose it."""
    from pathlib import Path

    from netsleuth import doctor as doc

    if bundle and root:
        raise InputError("--bundle", "give --bundle or --root, not both")
    if with_profile and (bundle or root or samples < 2):
        raise InputError("--profile", "profiles a live host: no --bundle/--root, --samples >= 2")
    if with_profile:
        from netsleuth.profile.run import online_cpus, probe

        probe(online_cpus()[0])  # exit 3 now, not after sampling, if perf is not permitted
    if bundle:
        d = doc.doctor_bundle(Path(bundle))
    elif root:
        d = doc.doctor_root(Path(root))
    else:
        if samples >= 2 and fmt == "text" and sys.stderr.isatty():
            click.echo(f"sampling {samples} times, {interval:g} s apart...", err=True)
        d = doc.doctor_live(samples, interval)
    if with_profile:
        return _doctor_profile(d, profile_duration, fmt, fail_on)
    return _doctor_output(d, fmt, fail_on)


def _doctor_profile(d: Any, seconds: float, fmt: str, fail_on: str | None) -> int:
    """doctor --profile: the diagnosis, then the hotspot CPUs' kernel stacks (if any)."""
    from netsleuth.profile.run import hotspot_cpus
    from netsleuth.profile.run import profile as run_profile

    cpus = hotspot_cpus(d.findings)
    prof = run_profile(cpus, seconds, 99) if cpus else None
    if prof is not None:
        d.findings.extend(prof.findings)
    if fmt == "json":
        extra = {"profile": None if prof is None else {**prof.to_json(), "notes": prof.notes}}
        return _doctor_output(d, fmt, fail_on, extra)
    code = _doctor_output(d, fmt, fail_on)
    console = stdout_console()
    if prof is None:
        console.print("\nprofile: no softirq hotspot, no profile taken", highlight=False)
    else:
        from netsleuth.report.profile_text import render_profile

        console.print()
        render_profile(console, prof)
    return code


def _doctor_output(
    d: Any, fmt: str, fail_on: str | None, extra: dict[str, Any] | None = None
) -> int:
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
                    **(extra or {}),
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


@main.command()
@click.option(
    "--cpus",
    default="auto",
    show_default=True,
    help="auto (the CPUs doctor's softirq-hotspot rule flags over 1 s, else all) or a list "
    "like 0-3,8.",
)
@click.option(
    "--duration",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds to sample; 0 samples until Ctrl-C (SIGINT) or SIGTERM.",
)
@click.option(
    "--frequency",
    type=click.IntRange(1, 100000),
    default=99,
    show_default=True,
    help="Samples a second on each CPU (99, not 100: out of step with periodic timers).",
)
@click.option(
    "--folded",
    "folded_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the stacks in folded form (flamegraph.pl, speedscope).",
)
@FORMAT
@FAIL_ON
@guarded
def profile(
    *,
    cpus: str,
    duration: float,
    frequency: int,
    folded_path: str | None,
    fmt: str,
    fail_on: str | None,
) -> int:
    """Sample kernel stacks per CPU (perf_event_open): contexts, hot NET_RX functions, causes."""
    from netsleuth.profile.run import auto_cpus, check_cpus, online_cpus, probe
    from netsleuth.profile.run import profile as run_profile
    from netsleuth.report.jsonout import document, dumps

    chosen = None if cpus == "auto" else _cpu_list(cpus, "--cpus")
    if chosen:
        check_cpus(chosen)
    probe(chosen[0] if chosen else online_cpus()[0])
    notes: list[str] = []
    if chosen is None:
        chosen = auto_cpus(notes)
    prof = run_profile(chosen, duration or None, frequency, notes=notes)
    if folded_path:
        try:
            with open(folded_path, "w") as fh:
                fh.writelines(line + "\n" for line in prof.folded())
        except OSError as err:
            raise InputError(folded_path, f"cannot write folded stacks: {err.strerror}") from None
    if fmt == "json":
        click.echo(dumps(document("profile", prof.findings, **prof.to_json(), notes=prof.notes)))
    else:
        from netsleuth.report.profile_text import render_profile

        render_profile(stdout_console(), prof)
    return fail_exit(prof.findings, fail_on)


@main.command()
@click.option(
    "--db",
    "db_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="SQLite database to create or append to.",
)
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=1.0, show_default=True)
@click.option(
    "--duration", type=click.FloatRange(0), default=None, help="Seconds (default: until Ctrl-C)."
)
@click.option("--drops", is_flag=True, help="Also trace kernel drops (root) and store groups.")
@click.option(
    "--retain", default=None, metavar="AGE", help="Expire samples older than AGE (7d, 12h, 90s)."
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Read the counters under this directory instead of the live host.",
)
@guarded
def record(
    *,
    db_path: str,
    interval: float,
    duration: float | None,
    drops: bool,
    retain: str | None,
    root: str | None,
) -> int:
    """Record per-interval receive-path rates, findings and drops into SQLite (WAL)."""
    import time
    from pathlib import Path

    from netsleuth.record.run import Committed, parse_retain
    from netsleuth.record.run import record as run_record

    try:
        keep = parse_retain(retain) if retain else None
    except ValueError as err:
        raise InputError("--retain", str(err)) from None
    if drops and os.geteuid() != 0:
        from netsleuth.errors import FacilityError

        raise FacilityError("record --drops needs root (a tracefs instance): run it with sudo")

    def committed(c: Committed) -> None:
        ids = ", ".join(sorted({f.id for f in c.findings})) or "no findings"
        stamp = time.strftime("%H:%M:%S", time.localtime(c.t))
        click.echo(f"sample {c.number} at {stamp}: {ids}")

    n = run_record(
        Path(db_path),
        interval=interval,
        duration=duration or None,
        drops=drops,
        retain=keep,
        root=Path(root) if root else None,
        on_commit=committed,
    )
    click.echo(f"recorded {n} sample(s) to {db_path}", err=True)
    return 0


@main.command()
@click.option(
    "--listen",
    default="127.0.0.1:9797",
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve /metrics on (loopback unless you say otherwise).",
)
@click.option("--drops", is_flag=True, help="Also count kernel drops (root; kfree_skb).")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Read the counters under this directory instead of the live host.",
)
@guarded
def exporter(*, listen: str, drops: bool, root: str | None) -> int:
    """Serve the receive path's counters and active findings to Prometheus."""
    from pathlib import Path

    from netsleuth.exporter.run import is_loopback, parse_listen, serve

    try:
        address = parse_listen(listen)
    except ValueError as err:
        raise InputError("--listen", str(err)) from None
    if drops and os.geteuid() != 0:
        from netsleuth.errors import FacilityError

        raise FacilityError("exporter --drops needs root (a tracefs instance): run it with sudo")
    if not is_loopback(address[0]):
        click.echo(
            f"netsleuth: serving on {address[0]}, not loopback: anyone who reaches it can read "
            "this host's counters",
            err=True,
        )

    def ready(url: str) -> None:
        click.echo(f"serving {url}", err=True)

    serve(address, drops=drops, root=Path(root) if root else None, on_ready=ready)
    return 0


def _write_html(path: str, title: str, fill: Callable[[Any, Any], None]) -> None:
    """Build a page with `fill(page, html_module)` and write it; one stderr line says where."""
    from netsleuth.report import html

    page = html.Page(title)
    fill(page, html)
    _write_page(page, path, "")


def _write_page(page: Any, path: str, what: str) -> None:
    from pathlib import Path

    try:
        size = page.write(Path(path))
    except OSError as err:
        raise InputError(path, f"cannot write the report: {err.strerror}") from None
    click.echo(f"wrote {path} ({size / 1e6:.2f} MB{what})", err=True)


@main.command()
@click.option(
    "--db",
    "db_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="A database written by `netsleuth record`.",
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE.html")
@guarded
def report(*, db_path: str, output: str) -> int:
    """Write a self-contained HTML report of a `record` database."""
    from pathlib import Path

    from netsleuth.record.schema import open_db
    from netsleuth.record.store import CORRUPT, read
    from netsleuth.report.html import MAX_COLUMNS, record_page

    db = open_db(Path(db_path), create=False)
    try:
        rec = read(db, MAX_COLUMNS)
        if not rec.times:
            raise InputError(db_path, "holds no samples yet")
        page = record_page(rec, db_path)
        page.render()  # the page's JSON is checked here: a value JSON cannot hold
    except CORRUPT as err:
        why = " ".join(str(err).split())[:200]
        raise InputError(db_path, f"not a netsleuth record database ({why})") from None
    finally:
        db.close()
    _write_page(page, output, f", {rec.samples} samples")
    return 0


@main.group()
def lab() -> None:
    """Reproduce on the real kernel: frames replayed into two network namespaces it creates
    and removes, each frame's verdict (delivered, dropped where and why, reassembly,
    forwarded, no effect) and the counters it moved."""


def _listen_specs(specs: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    out = []
    for spec in specs:
        proto, sep, port = spec.lower().partition("/")
        if not sep or proto not in ("tcp", "udp") or not port.isdigit() or int(port) > 65535:
            raise InputError("--listen", f"{spec!r}: use tcp/PORT or udp/PORT")
        out.append((proto, int(port)))
    return tuple(out)


@lab.command("replay")
@click.argument("capture")
@click.option("--limit", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--frames", "frame_list", default=None, help="Frames to replay, e.g. 1,4-6.")
@click.option(
    "--keep-addresses",
    is_flag=True,
    help="Do not assign the frames' destination addresses to the receiver.",
)
@click.option(
    "--listen", multiple=True, help="A socket on the receiver: tcp/PORT or udp/PORT (repeat)."
)
@click.option("--mtu", type=click.IntRange(68, 65535), default=1500, show_default=True)
@FORMAT
@FAIL_ON
@guarded
def lab_replay(
    *,
    capture: str,
    limit: int,
    frame_list: str | None,
    keep_addresses: bool,
    listen: tuple[str, ...],
    mtu: int,
    fmt: str,
    fail_on: str | None,
) -> int:
    """Replay CAPTURE's frames one at a time and report what this kernel did with each."""
    from netsleuth.lab.replay import Options, findings, parse_frame_list, replay_file
    from netsleuth.lab.sandbox import require_netns

    try:
        wanted = parse_frame_list(frame_list) if frame_list else None
    except ValueError as err:
        raise InputError("--frames", str(err)) from None
    opts = Options(limit, wanted, keep_addresses, _listen_specs(listen), mtu)
    require_netns()
    progress = _lab_progress() if fmt == "text" and sys.stderr.isatty() else None
    report = replay_file(capture, opts, progress)
    if progress is not None:
        click.echo("\r\033[K", err=True, nl=False)
    found = findings(report, report.symbols)
    if fmt == "json":
        from netsleuth.report.jsonout import document, dumps

        click.echo(dumps(document("lab replay", found, **report.to_json())))
    else:
        from netsleuth.report.lab_text import render_lab

        render_lab(stdout_console(), report, found, f"netsleuth lab replay {capture}")
    return fail_exit(found, fail_on)


def _lab_progress() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            click.echo(f"\rreplaying frame {done:,}/{total:,}", err=True, nl=False)

    return show


@lab.command("incident")
@click.argument("name", type=click.Choice(["ulb4", "rx-dropped-8023", "stgw-rps"]))
@FORMAT
@guarded
def lab_incident(*, name: str, fmt: str) -> int:
    """Build an incident's traffic, run it on this kernel, and print it beside what the
    incident's system did."""
    from netsleuth.lab.sandbox import require_netns
    from netsleuth.report.jsonout import document, dumps

    require_netns()
    if name == "stgw-rps":
        from netsleuth.lab.rps import run_rps

        rps = run_rps()
        if fmt == "json":
            click.echo(dumps(document("lab incident", [], **rps.to_json())))
        else:
            from netsleuth.report.lab_text import render_rps

            render_rps(stdout_console(), rps)
        return 0
    from netsleuth.lab.incidents import run_incident
    from netsleuth.lab.replay import findings

    rep = run_incident(name)
    found = findings(rep.lab, rep.lab.symbols)
    if fmt == "json":
        click.echo(dumps(document("lab incident", found, **rep.to_json())))
    else:
        from netsleuth.report.lab_text import render_incident

        render_incident(stdout_console(), rep, found)
    return 0


@main.command("bpf")
@click.argument("expression")
@click.option(
    "--encap",
    default="",
    metavar="LIST",
    help="For inner.* terms: the layers before the inner IPv4 header, e.g. vlan,gre-teb "
    "(vlan, gre, gre-teb, vxlan, ipip).",
)
@FORMAT
@guarded
def bpf(*, expression: str, encap: str, fmt: str) -> int:
    """Print the tcpdump expression and classic BPF program of a capture filter.

    EXPRESSION is tcpdump syntax, or inner.src/inner.dst/inner.host CIDR and inner.proto
    NAME terms joined with 'and', placed at the fixed offsets of --encap."""
    from netsleuth.bpf import compile_filter, format_program
    from netsleuth.report.jsonout import document, dumps

    c = compile_filter(expression, encap)
    if fmt == "json":
        click.echo(
            dumps(
                document(
                    "bpf",
                    [],
                    expression=c.expression,
                    program=[list(i) for i in c.file_program],
                    live_program=[list(i) for i in c.program],
                )
            )
        )
        return 0
    click.echo(f"# tcpdump expression (frames as in a capture file):\n{c.expression}\n")
    click.echo(f"# program (tcpdump -ddd form):\n{format_program(c.file_program)}")
    if c.program != c.file_program:
        click.echo(
            "\n# attached to netsleuth's live socket (the kernel strips the first VLAN tag "
            f"before packet sockets; checked with SKF_AD_VLAN_TAG_PRESENT):\n"
            f"{format_program(c.program)}"
        )
    return 0
