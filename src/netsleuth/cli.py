"""The netsleuth command line: click wiring only. Each command's options go to its module
in netsleuth.commands (imported when it runs, so `--help` loads no NumPy), which does the
work, renders and returns the exit code: 0 ok, 1 findings at or above --fail-on, 2
unusable input or arguments, 3 a missing privilege or kernel facility."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from netsleuth import __version__
from netsleuth.clitypes import NonEmptyPath, Seconds
from netsleuth.cliutil import run_guarded
from netsleuth.findings.select import SEVERITIES

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
    type=click.Choice(SEVERITIES),
    default=None,
    help="Exit 1 when a finding at or above this severity exists.",
)
HTML_REPORT = click.option(
    "--html",
    "html_path",
    type=NonEmptyPath(dir_okay=False),
    default=None,
    metavar="FILE.html",
    help="Also write a self-contained HTML report (opens offline).",
)


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
@click.argument("captures", nargs=-1, required=False, type=NonEmptyPath())
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
    type=click.Choice(SEVERITIES),
    default="info",
    show_default=True,
    help="Keep findings at or above this.",
)
@click.option(
    "--export",
    "export_path",
    type=NonEmptyPath(dir_okay=False),
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
def scan(**opts: Any) -> int:
    """Decode every packet of CAPTURES (pcap, pcapng, gzip; - for stdin) and report findings.

    --only and --min-severity filter what is shown, exported and judged by --fail-on.
    With --live IFACE, read the interface instead (root; see the live options below).
    """
    from netsleuth.commands import scan as command

    return command.execute(command.Options.from_click(opts))


@main.command()
@FORMAT
@click.option(
    "--keep",
    type=NonEmptyPath(file_okay=False),
    default=None,
    help="Write the incident captures to this folder and keep them.",
)
@click.option(
    "--html",
    "html_path",
    type=NonEmptyPath(dir_okay=False),
    default=None,
    metavar="FILE.html",
    help="Where to write the demo's report [default: netsleuth-demo.html in --keep or here].",
)
@guarded
def demo(**opts: Any) -> int:
    """Build the three incident captures and scan them."""
    from netsleuth.commands import demo as command

    return command.execute(command.Options(**opts))


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
def rss_hash(**opts: Any) -> int:
    """Print the Toeplitz RSS hash a NIC computes for one flow."""
    from netsleuth.commands import rss_hash as command

    return command.execute(command.Options(**opts))


@main.command()
@click.argument("captures", nargs=-1, required=True, type=NonEmptyPath())
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
@click.option(
    "--rps-cpus",
    default=None,
    help="Model RPS over these CPUs, a kernel cpulist: 0-7, all, 4-N or 0-N:2/4 (N: this "
    "host's last possible CPU).",
)
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
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes to spread the captures over, a large pcap or pcapng split into "
    "ranges; the same result [default: the usable CPUs; small inputs stay in one process].",
)
@click.option(
    "--dask",
    "dask_address",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run on this Dask scheduler's workers (captures on storage they all see; "
    "pip install 'netsleuth[dask]').",
)
@HTML_REPORT
@guarded
def steer(**opts: Any) -> int:
    """Predict per-queue (RSS) and per-CPU (RPS) receive load for CAPTURES and explain it."""
    from netsleuth.commands import steer as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option(
    "--root",
    type=NonEmptyPath(file_okay=False),
    default="/",
    show_default=True,
    help="Read proc/net/tcp and tcp6 under this directory (a bundle, a chroot).",
)
@click.option("--kernel", default=None, help="Kernel version to model (default: running).")
@FORMAT
@FAIL_ON
@guarded
def listen(**opts: Any) -> int:
    """Model the listening-socket lookup cost per SYN from the real socket table."""
    from netsleuth.commands import listen as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option(
    "--duration",
    type=Seconds(0),
    default=10.0,
    show_default=True,
    help="Seconds to trace; 0 traces until Ctrl-C (SIGINT), SIGTERM or SIGHUP.",
)
@click.option(
    "--interval",
    type=Seconds(0.2),
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
def drops(**opts: Any) -> int:
    """Trace packets the kernel drops (skb:kfree_skb): where, why and which protocol."""
    from netsleuth.commands import drops as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option("--bundle", type=NonEmptyPath(exists=True), default=None, help="Diagnose a bundle.")
@click.option(
    "--root",
    type=NonEmptyPath(file_okay=False, exists=True),
    default=None,
    help="One sample from files under this directory (static checks only).",
)
@click.option("--samples", type=click.IntRange(1, 3600), default=3, show_default=True)
@click.option("--interval", type=Seconds(0.1, 3600), default=1.0, show_default=True)
@click.option(
    "--profile",
    "with_profile",
    is_flag=True,
    help="Live only: when a CPU is a softirq hotspot, sample its kernel stacks too "
    "(as `netsleuth profile`; root or CAP_PERFMON).",
)
@click.option("--profile-duration", type=Seconds(0.5, 3600), default=5.0, show_default=True)
@FORMAT
@FAIL_ON
@guarded
def doctor(**opts: Any) -> int:
    """Sample the receive path (NIC, IRQs, softirqs, softnet, MIBs) and diagnose it."""
    from netsleuth.commands import doctor as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option(
    "-o",
    "--output",
    required=True,
    type=NonEmptyPath(),
    help="Bundle to write: FILE.tar.gz or a directory.",
)
@click.option("--duration", type=Seconds(0), default=2.0, show_default=True)
@click.option("--interval", type=Seconds(0.1, 3600), default=1.0, show_default=True)
@guarded
def collect(**opts: Any) -> int:
    """Write a bundle of receive-path readings for `doctor --bundle` elsewhere."""
    from netsleuth.commands import collect as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option("--interval", type=Seconds(0.2, 3600), default=1.0, show_default=True)
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after COUNT intervals.")
@guarded
def watch(**opts: Any) -> int:
    """Per-second view of the receive path (softirqs, softnet, devices, queues)."""
    from netsleuth.commands import watch as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option(
    "--cpus",
    default="auto",
    show_default=True,
    help="auto (the CPUs doctor's softirq-hotspot rule flags over 1 s, else all), all (the "
    "online CPUs) or a kernel cpulist: 0-3,8, 4-N (N: the last possible CPU) or 0-N:2/4 (2 "
    "CPUs of each 4).",
)
@click.option(
    "--duration",
    type=Seconds(0),
    default=10.0,
    show_default=True,
    help="Seconds to sample; 0 samples until Ctrl-C (SIGINT), SIGTERM or SIGHUP.",
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
    type=NonEmptyPath(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Also write the stacks in folded form (flamegraph.pl, speedscope).",
)
@FORMAT
@FAIL_ON
@guarded
def profile(**opts: Any) -> int:
    """Sample kernel stacks per CPU (perf_event_open): contexts, hot NET_RX functions, causes."""
    from netsleuth.commands import profile as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option(
    "--db",
    "db_path",
    required=True,
    type=NonEmptyPath(dir_okay=False),
    metavar="FILE",
    help="SQLite database to create or append to.",
)
@click.option("--interval", type=Seconds(0.1, 3600), default=1.0, show_default=True)
@click.option("--duration", type=Seconds(0), default=None, help="Seconds (default: until Ctrl-C).")
@click.option("--drops", is_flag=True, help="Also trace kernel drops (root) and store groups.")
@click.option(
    "--retain", default=None, metavar="AGE", help="Expire samples older than AGE (7d, 12h, 90s)."
)
@click.option(
    "--root",
    type=NonEmptyPath(file_okay=False, exists=True),
    default=None,
    help="Read the counters under this directory instead of the live host.",
)
@guarded
def record(**opts: Any) -> int:
    """Record per-interval receive-path rates, findings and drops into SQLite (WAL)."""
    from netsleuth.commands import record as command

    return command.execute(command.Options(**opts))


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
    type=NonEmptyPath(file_okay=False, exists=True),
    default=None,
    help="Read the counters under this directory instead of the live host.",
)
@guarded
def exporter(**opts: Any) -> int:
    """Serve the receive path's counters and active findings to Prometheus."""
    from netsleuth.commands import exporter as command

    return command.execute(command.Options(**opts))


@main.command()
@click.option(
    "--db",
    "db_path",
    required=True,
    type=NonEmptyPath(dir_okay=False),
    metavar="FILE",
    help="A database written by `netsleuth record`.",
)
@click.option(
    "-o", "--output", required=True, type=NonEmptyPath(dir_okay=False), metavar="FILE.html"
)
@guarded
def report(**opts: Any) -> int:
    """Write a self-contained HTML report of a `record` database."""
    from netsleuth.commands import report as command

    return command.execute(command.Options(**opts))


@main.group()
def lab() -> None:
    """Reproduce on the real kernel: frames replayed into two network namespaces it creates
    and removes, each frame's verdict (delivered, dropped where and why, reassembly,
    forwarded, no effect) and the counters it moved."""


@lab.command("replay")
@click.argument("capture", type=NonEmptyPath())
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
def lab_replay(**opts: Any) -> int:
    """Replay CAPTURE's frames one at a time and report what this kernel did with each."""
    from netsleuth.commands import lab as command

    return command.execute_replay(command.ReplayOptions(**opts))


@lab.command("incident")
@click.argument("name", type=click.Choice(["ulb4", "rx-dropped-8023", "stgw-rps"]))
@FORMAT
@guarded
def lab_incident(**opts: Any) -> int:
    """Build an incident's traffic, run it on this kernel, and print it beside what the
    incident's system did."""
    from netsleuth.commands import lab as command

    return command.execute_incident(command.IncidentOptions(**opts))


@main.command("bpf")
@click.argument("expression")
@click.option(
    "--encap",
    default="",
    metavar="LIST",
    help="For inner.* terms: the layers before the inner IPv4/IPv6 header, e.g. vlan,gre-teb "
    "(vlan, gre, gre-teb, vxlan, ipip).",
)
@FORMAT
@guarded
def bpf(**opts: Any) -> int:
    """Print the tcpdump expression and classic BPF program of a capture filter.

    EXPRESSION is tcpdump syntax, or inner.src/inner.dst/inner.host CIDR (IPv4 or IPv6) and
    inner.proto NAME terms joined with 'and', placed at the fixed offsets of --encap."""
    from netsleuth.commands import bpf as command

    return command.execute(command.Options(**opts))
