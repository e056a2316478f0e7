"""Absurd arguments (the CLI fuzz campaign): each is refused before anything runs, exit 2
and one line (click's usage text ends with its "Error:" line), never a traceback, a run
that never ends or a file written over another."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from netsleuth.cli import main
from netsleuth.clitypes import NonEmptyPath, Seconds
from netsleuth.drops.run import parse_filters
from netsleuth.sources.cpulist import format_cpu_list, parse_cpu_list
from tests import clirun

# Every option that takes seconds, with what its command needs besides.
SECONDS = [
    (["drops"], "--duration"),
    (["drops"], "--interval"),
    (["doctor"], "--interval"),
    (["doctor"], "--profile-duration"),
    (["collect", "-o", "b.tar.gz"], "--duration"),
    (["collect", "-o", "b.tar.gz"], "--interval"),
    (["watch", "--count", "1"], "--interval"),
    (["profile"], "--duration"),
    (["record", "--db", "r.db"], "--duration"),
    (["record", "--db", "r.db"], "--interval"),
    (["scan", "--live", "lo"], "--duration"),
    (["scan", "--live", "lo"], "--interval"),
    (["scan", "--live", "lo"], "--before"),
    (["scan", "--live", "lo"], "--after"),
]
# Those with no upper bound before: inf and 1e308 were taken (collect --duration 1e308
# --interval 0.1: OverflowError, and inf samples).
UNBOUNDED = [
    (["drops"], "--duration"),
    (["drops"], "--interval"),
    (["collect", "-o", "b.tar.gz", "--interval", "0.1"], "--duration"),
    (["profile"], "--duration"),
    (["record", "--db", "r.db"], "--duration"),
    (["scan", "--live", "lo"], "--duration"),
]


def _last_line(ran: clirun.Ran) -> str:
    """click's usage text (the usage, the hint to --help and a blank line), then its one
    error line."""
    *usage, last = ran.err_lines()
    assert len(usage) == 3 and usage[0].startswith("Usage: ") and usage[2] == "", ran.err
    return last


@pytest.mark.parametrize(("args", "option"), SECONDS)
def test_nan_seconds_are_refused(tmp_path: Path, args: list[str], option: str) -> None:
    # click's FloatRange let NaN through every bound: `watch --interval nan` sampled as fast
    # as it could, record/collect/profile --duration nan raised ValueError (a traceback),
    # `drops --duration nan` traced until killed.
    args = [str(tmp_path / a) if a.endswith((".gz", ".db")) else a for a in args]
    ran = clirun.run(*args, option, "nan", code=2, timeout=20)
    assert (
        _last_line(ran) == f"Error: Invalid value for '{option}': 'nan' is not a number of seconds."
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["inf", "1e308"])
@pytest.mark.parametrize(("args", "option"), UNBOUNDED)
def test_seconds_past_the_bound_are_refused(
    tmp_path: Path, args: list[str], option: str, value: str
) -> None:
    args = [str(tmp_path / a) if a.endswith((".gz", ".db")) else a for a in args]
    ran = clirun.run(*args, option, value, code=2, timeout=20)
    low = "0.2" if (args[0], option) == ("drops", "--interval") else "0"
    low_op = "<" if args[0] == "scan" else "<="
    assert _last_line(ran) == (
        f"Error: Invalid value for '{option}': {float(value):g} is not in the range "
        f"{low}{low_op}x<=1e+09."
    )
    assert list(tmp_path.iterdir()) == []


def test_every_float_option_is_seconds() -> None:
    """A new float option is a Seconds too, or it takes NaN as above."""
    seen = 0
    todo: list[click.Command] = [main]
    while todo:
        cmd = todo.pop()
        todo += list(getattr(cmd, "commands", {}).values())
        for p in cmd.params:
            if isinstance(p.type, click.FloatRange | type(click.FLOAT)):
                assert isinstance(p.type, Seconds), f"{cmd.name} {p.opts}"
                seen += 1
    assert seen == len(SECONDS)


# Every option that takes a path, with what its command needs besides.
PATHS = [
    (["scan", "x.pcap"], "--export"),
    (["scan", "x.pcap"], "--html"),
    (["steer", "x.pcap"], "--html"),
    (["demo"], "--keep"),
    (["demo"], "--html"),
    (["listen"], "--root"),
    (["doctor"], "--bundle"),
    (["doctor"], "--root"),
    (["collect", "--duration", "0.2"], "-o"),
    (["profile", "--duration", "30"], "--folded"),
    (["record", "--duration", "0.2"], "--db"),
    (["record", "--db", "r.db", "--duration", "0.2"], "--root"),
    (["exporter"], "--root"),
    (["report", "-o", "r.html"], "--db"),
    (["report", "--db", "r.db"], "-o"),
]


@pytest.mark.parametrize(("args", "option"), PATHS)
def test_empty_paths_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], option: str
) -> None:
    # click.Path takes '' and the commands read it as the option left out: `scan --html ''`
    # and `scan --export ''` wrote nothing and exited 0; `collect -o ''` wrote its bundle
    # into the working directory.
    monkeypatch.chdir(tmp_path)
    ran = clirun.invoke(*args, option, "", code=2)
    hint = "'-o' / '--output'" if option == "-o" else f"'{option}'"
    assert _last_line(ran) == f"Error: Invalid value for {hint}: an empty path"
    assert list(tmp_path.iterdir()) == []


def test_every_path_option_refuses_the_empty_path() -> None:
    """A new path option or argument is a NonEmptyPath too, and listed here."""
    seen = []
    todo: list[click.Command] = [main]
    while todo:
        cmd = todo.pop()
        todo += list(getattr(cmd, "commands", {}).values())
        for p in cmd.params:
            if isinstance(p.type, click.Path):
                assert isinstance(p.type, NonEmptyPath), f"{cmd.name} {p.opts}"
                seen.append((cmd.name, p.opts[0]))
    # The capture arguments too (test_an_empty_capture_name_is_refused).
    arguments = [("scan", "captures"), ("steer", "captures"), ("replay", "capture")]
    assert sorted(seen) == sorted([*((args[0], option) for args, option in PATHS), *arguments])


FIXTURES = Path(__file__).parent / "fixtures"
CAPTURE = FIXTURES / "kernel" / "icmp-errors.pcap"


def _copy(tmp_path: Path) -> Path:
    cap = tmp_path / "in.pcap"
    cap.write_bytes(CAPTURE.read_bytes())
    return cap


@pytest.mark.parametrize("command", ["scan", "steer"])
def test_html_never_overwrites_an_input(tmp_path: Path, command: str) -> None:
    # `scan CAP --html CAP` and `steer CAP --html CAP` wrote the report over the capture
    # and exited 0 (--export was refused; --html was not checked).
    cap = _copy(tmp_path)
    ran = clirun.invoke(command, str(cap), "--html", str(cap), code=2)
    assert ran.err_lines() == [
        f"netsleuth: {cap}: --html would overwrite the input {cap}: choose another path"
    ]
    assert cap.read_bytes() == CAPTURE.read_bytes()


def test_export_and_html_may_not_name_one_file(tmp_path: Path) -> None:
    # The report was written over the export just written: the evidence was lost.
    cap = _copy(tmp_path)
    out = tmp_path / "evidence.pcapng"
    same = tmp_path / "." / "evidence.pcapng"
    ran = clirun.invoke("scan", str(cap), "--export", str(out), "--html", str(same), code=2)
    assert ran.err_lines() == [
        f"netsleuth: {same}: --export and --html name the same file: give each its own path"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pcap"]
    # A device takes both, as asked.
    clirun.invoke("scan", str(cap), "--export", "/dev/null", "--html", "/dev/null", code=0)


def test_report_never_overwrites_its_database(tmp_path: Path) -> None:
    # `report --db R -o R` wrote the HTML over the record database, exit 0.
    db = tmp_path / "r.db"
    root = FIXTURES / "host128" / "t0"
    clirun.invoke(
        "record",
        "--db",
        str(db),
        "--root",
        str(root),
        "--duration",
        "0.25",
        "--interval",
        "0.1",
        code=0,
    )
    kept = db.read_bytes()
    ran = clirun.invoke("report", "--db", str(db), "-o", str(db), code=2)
    assert ran.err_lines() == [
        f"netsleuth: {db}: -o would overwrite the input {db}: choose another path"
    ]
    assert db.read_bytes() == kept


def test_listen_on_a_root_without_tables_is_one_line(tmp_path: Path) -> None:
    # Two notes ("proc/net/tcp is absent: skipped", tcp6 the same) came before the error.
    ran = clirun.invoke("listen", "--root", str(tmp_path), code=2)
    assert ran.err_lines() == [
        f"netsleuth: {tmp_path}: no proc/net/tcp or tcp6 here: is --root a Linux root?"
    ]


# '²' is a digit to str.isdigit() and not to int(); int() refuses 4,300 digits or more.
ODD_NUMBERS = ["\u00b2", "9" * 5000]


@pytest.mark.parametrize("number", ODD_NUMBERS)
def test_bpf_inner_proto_takes_ascii_numbers_only(number: str) -> None:
    ran = clirun.invoke("bpf", f"inner.proto {number}", code=2)
    assert ran.err_lines() == [
        f"netsleuth: --filter: inner.proto {number[:40]!r}: give tcp, udp, icmp, ... or 0-255"
    ]


@pytest.mark.parametrize("number", ODD_NUMBERS)
def test_lab_listen_takes_ascii_ports_only(tmp_path: Path, number: str) -> None:
    spec = f"tcp/{number}"
    ran = clirun.invoke("lab", "replay", str(CAPTURE), "--listen", spec, code=2)
    assert ran.err_lines() == [f"netsleuth: --listen: {spec[:40]!r}: use tcp/PORT or udp/PORT"]


def test_exporter_that_cannot_listen_says_one_line() -> None:
    # The "not loopback" warning came first, then the error: two lines for one exit 2.
    ran = clirun.run("exporter", "--listen", "192.0.2.1:9797", code=2, timeout=30)
    assert ran.err_lines() == [
        "netsleuth: 192.0.2.1:9797: cannot listen: Cannot assign requested address"
    ]


def test_exporter_ports_are_ascii_numbers() -> None:
    # Exit 2 before too, but saying "invalid literal for int() with base 10: '²'".
    ran = clirun.invoke("exporter", "--listen", "127.0.0.1:\u00b2", code=2)
    assert ran.err_lines() == [
        "netsleuth: --listen: '127.0.0.1:\u00b2' is not HOST:PORT (e.g. 127.0.0.1:9797)"
    ]


def test_live_takes_a_device_name_not_an_alias() -> None:
    # "eth0:1" read eth0: the kernel drops an alias's part after the colon (helper-52).
    ran = clirun.invoke("scan", "--live", "lo:1", "--duration", "1", code=2)
    assert ran.err_lines() == [
        "netsleuth: --live: 'lo:1' is not a network device name (1-15 bytes, no / : or spaces)"
    ]


def test_live_evidence_in_a_folder_that_is_not_there_is_refused_at_the_start(
    tmp_path: Path,
) -> None:
    # Accepted before, and the evidence lost at the first trigger (helper-52).
    out = tmp_path / "missing" / "x.pcapng"
    ran = clirun.invoke("scan", "--live", "lo", "--duration", "1", "--export", str(out), code=2)
    assert ran.err_lines() == [
        f"netsleuth: {out}: cannot write in {out.parent}: No such file or directory"
    ]
    assert list(tmp_path.iterdir()) == []


def test_profile_folded_in_a_folder_that_is_not_there_is_refused_before_sampling(
    tmp_path: Path,
) -> None:
    # Refused only once the run's samples were taken, and they were lost.
    out = tmp_path / "missing" / "x.folded"
    ran = clirun.invoke("profile", "--duration", "30", "--folded", str(out), code=2)
    assert ran.err_lines() == [
        f"netsleuth: {out}: cannot write in {out.parent}: No such file or directory"
    ]


# skb:kfree_skb's protocol is ntohs(skb->protocol), an unsigned short: 0x1ffff was taken
# (int(text, 0)), the kernel filter never matched and the run showed no drops, exit 0.
# -1 was refused by the kernel only once tracefs was set up, 1_0 and '١٢' taken as 10 and 12.
@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("protocol=0x1ffff", "protocol 0x1ffff is beyond 0xffff (16 bits)"),
        ("protocol=65536", "protocol 65536 is beyond 0xffff (16 bits)"),
        ("proto=0x000010000", "protocol 0x000010000 is beyond 0xffff (16 bits)"),
        ("protocol=" + "9" * 5000, f"protocol {'9' * 40} is beyond 0xffff (16 bits)"),
        ("protocol=-1", "unknown protocol '-1': give a name or a number 0-0xffff"),
        ("protocol=1_0", "unknown protocol '1_0': give a name or a number 0-0xffff"),
        (
            "protocol=\u0661\u0662",
            "unknown protocol '\u0661\u0662': give a name or a number 0-0xffff",
        ),
        ("protocol=0x", "unknown protocol '0x': give a name or a number 0-0xffff"),
        ("reason=SKB_DROP_REASON_", "give the reason after SKB_DROP_REASON_"),
        # Sentinels of enum skb_drop_reason (include/net/dropreason-core.h): MAX is in
        # kfree_skb's reason table, so reason=MAX was taken and the run showed no drops.
        (
            "reason=MAX",
            "SKB_DROP_REASON_MAX ends the kernel's list of drop reasons; no drop has it",
        ),
        (
            "reason=skb_drop_reason_max",
            "SKB_DROP_REASON_MAX ends the kernel's list of drop reasons; no drop has it",
        ),
        (
            "reason=SUBSYS_MASK",
            "SKB_DROP_REASON_SUBSYS_MASK masks the subsystem bits of a drop reason; no drop has it",
        ),
    ],
)
def test_drops_filters_out_of_range_are_refused(expr: str, problem: str) -> None:
    ran = clirun.invoke("drops", "--duration", "30", "--filter", expr, code=2)
    assert ran.err_lines() == [f"netsleuth: --filter: {expr[:40]!r}: {problem}"]


@pytest.mark.parametrize("expr", ["protocol=0xffff", "protocol=65535", "protocol=0004"])
def test_drops_filters_take_every_16_bit_protocol(expr: str) -> None:
    clirun.invoke("drops", "--duration", "0.2", "--filter", expr, "--format", "json", code=0)


def test_drops_filter_protocols_are_read_as_numbers() -> None:
    got = parse_filters(("protocol=0xffff", "protocol=65535", "protocol=0004", "proto=0x86DD"))
    assert got.protocols == {0xFFFF, 4, 0x86DD}


def _online_cpus() -> list[int]:
    return parse_cpu_list(Path("/sys/devices/system/cpu/online").read_text())


# As the kernel's bitmap_parselist (lib/bitmap.c) reads a cpulist: a descending range and a
# negative CPU are EINVAL there too. A list of no CPU at all: `profile --cpus ''` sampled
# nothing and exited 0.
NO_CPU_LISTS = [
    ("", "'' names no CPU: give a list like 0-3,8"),
    (",", "',' names no CPU: give a list like 0-3,8"),
    (" , ", "' , ' names no CPU: give a list like 0-3,8"),
    ("3-1", "'3-1' is not a CPU list like 0-3,8 below 8192 ('3-1' is a descending range)"),
    (
        "-1",
        "'-1' is not a CPU list like 0-3,8 below 8192 ('-1' is not a CPU or range of CPUs "
        "below 8192)",
    ),
]


@pytest.mark.parametrize(("cpus", "problem"), NO_CPU_LISTS)
def test_profile_cpus_that_name_no_cpu_are_refused(cpus: str, problem: str) -> None:
    ran = clirun.invoke("profile", "--duration", "30", "--cpus", cpus, code=2)
    assert ran.err_lines() == [f"netsleuth: --cpus: {problem}"]


def test_profile_cpus_that_are_not_online_are_refused() -> None:
    online = _online_cpus()
    beyond = max(online) + 1
    ran = clirun.invoke("profile", "--duration", "30", "--cpus", f"0,{beyond}", code=2)
    listed = format_cpu_list(online)  # "0-1" here; 512 numbers on a 512-CPU host before
    assert ran.err_lines() == [f"netsleuth: --cpus: CPU {beyond} not online (online: {listed})"]


@pytest.mark.parametrize(
    ("cpus", "text"),
    [
        ([0], "0"),
        ([0, 1, 2, 3, 8, 10, 11], "0-3,8,10-11"),
        ([5, 3, 4, 4], "3-5"),
        (list(range(512)), "0-511"),
        ([0, 2, 4, 6], "0,2,4,6"),
    ],
)
def test_cpu_lists_are_written_as_the_kernel_writes_them(cpus: list[int], text: str) -> None:
    assert format_cpu_list(cpus) == text
    assert parse_cpu_list(text) == sorted(set(cpus))


def test_profile_cpus_skip_empty_items_as_the_kernel_does() -> None:
    ran = clirun.invoke("profile", "--duration", "0.3", "--cpus", "0,,0", "--format", "json")
    assert [c["cpu"] for c in ran.json()["cpus"]] == [0]


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose last possible CPU (N) is 3."""
    monkeypatch.setattr("netsleuth.commands.common.last_possible_cpu", lambda: 3)


CPU_OPTIONS = [(["profile", "--duration", "30"], "--cpus"), (["steer", str(CAPTURE)], "--rps-cpus")]


# What the kernel's bitmap_parselist (lib/bitmap.c) refuses in the forms it has beyond plain
# ranges: all of them were refused before, as not a CPU or range, whatever their fault.
@pytest.mark.usefixtures("four_cpus")
@pytest.mark.parametrize(("argv", "option"), CPU_OPTIONS)
@pytest.mark.parametrize(
    ("cpus", "problem"),
    [
        ("0-7:3/2", "'0-7:3/2': 3 CPUs used of each group of 2"),
        ("0-7:0/0", "'0-7:0/0': a group of 0 CPUs"),
        ("0-7:1/4294967296", "'0-7:1/4294967296': a used or group size beyond 32 bits"),
        # kernel-parameters.rst: 16-N on a 4-CPU host is 16-3, "invalid (start > end)".
        ("16-N", "'16-N' is a descending range (N is 3)"),
    ],
)
def test_cpu_lists_the_kernel_refuses_are_refused(
    argv: list[str], option: str, cpus: str, problem: str
) -> None:
    ran = clirun.invoke(*argv, option, cpus, code=2)
    assert ran.err_lines() == [
        f"netsleuth: {option}: {cpus!r} is not a CPU list like 0-3,8 below 8192 ({problem})"
    ]


@pytest.mark.usefixtures("four_cpus")
@pytest.mark.parametrize(
    ("cpus", "modelled"),
    [("0-7:2/4", [0, 1, 4, 5]), ("all", [0, 1, 2, 3]), ("2-N", [2, 3]), ("ALL:1/2", [0, 2])],
)
def test_steer_rps_cpus_take_the_kernel_cpulist_forms(cpus: str, modelled: list[int]) -> None:
    ran = clirun.invoke("steer", str(CAPTURE), "--rps-cpus", cpus, "--format", "json")
    assert ran.json()["config"]["rps"]["cpus"] == modelled


def test_n_is_this_hosts_last_possible_cpu() -> None:
    # nr_cpu_ids - 1, as the kernel reads N in a cpulist (kernel/smp.c setup_nr_cpu_ids).
    possible = parse_cpu_list(Path("/sys/devices/system/cpu/possible").read_text())
    ran = clirun.invoke("steer", str(CAPTURE), "--rps-cpus", "N", "--format", "json")
    assert ran.json()["config"]["rps"]["cpus"] == [possible[-1]]


def test_profile_cpus_take_n(monkeypatch: pytest.MonkeyPatch) -> None:
    last = _online_cpus()[-1]
    monkeypatch.setattr("netsleuth.commands.common.last_possible_cpu", lambda: last)
    ran = clirun.invoke("profile", "--duration", "0.3", "--cpus", "N", "--format", "json")
    assert [c["cpu"] for c in ran.json()["cpus"]] == [last]


@pytest.mark.parametrize("cpus", ["all", " ALL "])
def test_profile_cpus_all_is_the_online_cpus_where_more_are_possible(
    monkeypatch: pytest.MonkeyPatch, cpus: str
) -> None:
    """A host whose possible CPUs run past its online ones (SMT off, a VM's hotplug slots):
    the kernel's `all` is 0-N, and sampling an offline CPU is refused, so `--cpus all`
    exited 2 there; it samples the online CPUs. `0-N` still names the offline ones."""
    online = _online_cpus()
    monkeypatch.setattr("netsleuth.commands.common.last_possible_cpu", lambda: online[-1] + 4)
    ran = clirun.invoke("profile", "--duration", "0.3", "--cpus", cpus, "--format", "json")
    assert [c["cpu"] for c in ran.json()["cpus"]] == list(online)
    refused = clirun.invoke("profile", "--duration", "30", "--cpus", "0-N", code=2)
    assert refused.err_lines()[0].startswith(f"netsleuth: --cpus: CPU {online[-1] + 1}-")


@pytest.mark.parametrize("cpus", ["", ","])
def test_steer_rps_cpus_that_name_no_cpu_are_refused(cpus: str) -> None:
    # '' modelled no RPS, exit 0; ',' raised ValueError (max() of no CPUs): a traceback.
    ran = clirun.invoke("steer", str(CAPTURE), "--rps-cpus", cpus, code=2)
    assert ran.err_lines() == [
        f"netsleuth: --rps-cpus: {cpus!r} names no CPU: give a list like 0-3,8"
    ]


# Each was taken before and read as the option left out, or as nothing at all.
EMPTY_OR_UNKNOWN = [
    # No finding id is blank: no finding kept, so --fail-on passed.
    (
        ["scan", str(CAPTURE), "--only", ""],
        "--only: '' matches no finding id (e.g. 'ipv4.fragment.*')",
    ),
    (
        ["scan", "--live", "lo", "--duration", "30", "--only", " "],
        "--only: ' ' matches no finding id (e.g. 'ipv4.fragment.*')",
    ),
    # Every frame read, with no filter.
    (
        ["scan", "--live", "lo", "--duration", "30", "--filter", ""],
        "--filter: an empty filter: leave --filter out to read every frame",
    ),
    # The model's --queues and --key used, not a device's.
    (
        ["steer", str(CAPTURE), "--from-host", ""],
        "--from-host: '' is not a network device name (1-15 bytes, no / : or spaces)",
    ),
    # The running kernel's version modelled.
    (
        ["steer", str(CAPTURE), "--rps-cpus", "0-1", "--kernel", ""],
        "--kernel: '' is not a version like 4.9",
    ),
    (["listen", "--kernel", ""], "--kernel: '' is not a version like 4.9"),
    # No flow type hashed with ports.
    (
        ["steer", str(CAPTURE), "--l4", "tcp"],
        "--l4: 'tcp': the flow types are tcp4, tcp6, udp4, udp6",
    ),
    (
        ["steer", str(CAPTURE), "--l4", "TCP4"],
        "--l4: 'TCP4': the flow types are tcp4, tcp6, udp4, udp6",
    ),
]


@pytest.mark.parametrize(("args", "problem"), EMPTY_OR_UNKNOWN)
def test_empty_or_unknown_values_are_refused(args: list[str], problem: str) -> None:
    ran = clirun.invoke(*args, code=2)
    assert ran.err_lines() == [f"netsleuth: {problem}"]


@pytest.mark.parametrize(("l4", "flows"), [("tcp4, udp4", ["tcp4", "udp4"]), ("", [])])
def test_steer_l4_lists(l4: str, flows: list[str]) -> None:
    # ' udp4' was ignored: UDP over IPv4 was hashed on addresses only. '' is no flow type
    # hashed with ports, which a NIC can be set to.
    ran = clirun.invoke("steer", str(CAPTURE), "--l4", l4, "--format", "json")
    assert ran.json()["config"]["nic"]["l4"] == flows


# A capture named '' was read as a file of that name: a summary table, then
# "netsleuth: : No such file or directory".
@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["scan", ""], "'[CAPTURES]...'"),
        (["scan", str(CAPTURE), ""], "'[CAPTURES]...'"),
        (["steer", ""], "'CAPTURES...'"),
        (["lab", "replay", ""], "'CAPTURE'"),
    ],
)
def test_an_empty_capture_name_is_refused(args: list[str], name: str) -> None:
    ran = clirun.invoke(*args, code=2)
    assert _last_line(ran) == f"Error: Invalid value for {name}: an empty path"
    assert ran.out == ""


# '' was read as the option left out: every frame replayed, every sample kept for good.
# And the option was named twice in --frames' errors ("--frames: --frames: ...").
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["lab", "replay", str(CAPTURE), "--frames", ""],
            "netsleuth: --frames: no frame numbers given: e.g. 1,4-6",
        ),
        (
            ["lab", "replay", str(CAPTURE), "--frames", "abc"],
            "netsleuth: --frames: 'abc' is not a frame number or range",
        ),
        (
            ["record", "--db", "r.db", "--duration", "0.2", "--retain", ""],
            "netsleuth: --retain: '' is not a duration like 7d, 12h, 30m or 90s",
        ),
    ],
)
def test_empty_lists_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], line: str
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = clirun.invoke(*args, code=2)
    assert ran.err_lines() == [line]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user owns")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")
def test_an_unreadable_capture_beside_a_readable_one(tmp_path: Path) -> None:
    """click.Path's own readable check (os.access) refused the whole command line, so the
    readable capture was not scanned either; now each input says what it could read. Root
    reads any file: the run drops the capabilities that let it (setpriv)."""
    ok, secret = tmp_path / "ok.pcap", tmp_path / "secret.pcap"
    shutil.copy(CAPTURE, ok)
    shutil.copy(CAPTURE, secret)
    os.chown(secret, 65534, 65534)
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]
    argv = [*drop, sys.executable, "-m", "netsleuth", "scan", "--format", "json", str(ok)]
    done = subprocess.run([*argv, str(secret)], capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"netsleuth: {secret}: Permission denied"]
    inputs = json.loads(done.stdout)["inputs"]
    assert [(i["packets"] > 0, i["error"]) for i in inputs] == [
        (True, None),
        (False, f"{secret}: Permission denied"),
    ]
