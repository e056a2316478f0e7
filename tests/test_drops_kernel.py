"""drops on the real kernel: two network namespaces joined by a veth pair, packets the
receiving stack must drop sent across, and the counts, reasons, protocols and locations
checked against what was sent. After every run (normal end, SIGINT, SIGTERM, SIGHUP, a stale
instance left by a killed run) the tracing state is exactly as before. Needs root."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netsleuth import craft
from netsleuth.drops.run import NO_FILTERS, Filters, Report, trace
from netsleuth.sources.tracefs import find_tracefs
from tests.netns import WARM_UP_PORT as CLOSED_PORT
from tests.netns import Pair, bpdus, udp_no_ports, veth_pair, wait_for_no_ports
from tests.tracefsutil import wait_for_drops_event

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.199.0.1", "10.199.0.2"
NETSLEUTH = [str(Path(sys.executable).with_name("netsleuth"))]


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, AF_PACKET and tracefs")
    if not Path("/sys/kernel/tracing").is_dir() and not Path("/sys/kernel/debug").is_dir():
        pytest.skip("no tracefs mount point in this kernel")


def tracing_state() -> dict[str, str]:
    """What a user of ftrace would notice if we changed it."""
    state: dict[str, str] = {"mounted": str(find_tracefs())}
    root = find_tracefs()
    if root is None:
        return state
    for name in ("tracing_on", "current_tracer", "set_event", "buffer_size_kb", "trace_options"):
        p = root / name
        if p.exists():
            state[name] = p.read_text()
    ev = root / "events" / "skb" / "kfree_skb"
    for name in ("enable", "filter"):
        state[f"kfree_skb/{name}"] = (ev / name).read_text()
    state["instances"] = " ".join(sorted(p.name for p in (root / "instances").iterdir()))
    return state


@pytest.fixture
def pair() -> Iterator[Pair]:
    _need_root()
    with veth_pair("dr", A_IP, B_IP) as p:
        yield p


def traced(send: Callable[[], None], filters: Filters = NO_FILTERS) -> Report:
    """Trace while `send` runs in a thread started once tracing is on."""
    worker = threading.Thread(target=send)
    report = trace(duration=1.5, filters=filters, on_start=worker.start)
    worker.join()
    return report


def counts(report: Report, *, reason: str | None = None, protocol: int | None = None) -> int:
    return sum(
        r.count
        for r in report.rows
        if (reason is None or r.reason == reason) and (protocol is None or r.protocol == protocol)
    )


def test_stp_bpdus_closed_ports_and_bad_checksums_are_counted_and_named(pair: Pair) -> None:
    before = tracing_state()
    stp = bpdus(40)
    a_mac = b"\x02\x00\x00\x00\x00\x01"
    ip = craft.ipv4(A_IP, B_IP, craft.udp(A_IP, B_IP, 4000, 5000, b"x" * 18), 17, checksum=0xBAD)
    bad_csum = b"".join([pair.b_mac, a_mac, b"\x08\x00", ip])
    n_udp, n_csum = 300, 25

    def send() -> None:
        for f in stp:
            pair.raw.send(f)
        for i in range(n_udp):
            pair.udp.sendto(b"%d" % i, (B_IP, CLOSED_PORT))
        for _ in range(n_csum):
            pair.raw.send(bad_csum)

    report = traced(send)
    assert report.lost_events == 0
    llc = [r for r in report.rows if r.protocol == 0x0004]
    assert sum(r.count for r in llc) == len(stp) == 20
    assert all(r.location is not None for r in llc)
    assert counts(report, reason="NO_SOCKET", protocol=0x0800) == n_udp
    assert counts(report, reason="IP_CSUM", protocol=0x0800) == n_csum
    no_socket = next(r for r in report.rows if r.reason == "NO_SOCKET")
    assert no_socket.location is not None and "udp" in no_socket.location.function
    findings = report.findings
    stp_finding = next(f for f in findings if f.evidence["protocol"] == 4)
    assert "spanning-tree" in stp_finding.explanation
    assert tracing_state() == before


def test_a_kernel_filter_keeps_only_what_was_asked(pair: Pair) -> None:
    stp = bpdus(10)

    def send() -> None:
        for f in stp:
            pair.raw.send(f)
        for i in range(50):
            pair.udp.sendto(b"%d" % i, (B_IP, CLOSED_PORT))

    report = traced(send, Filters(reasons=frozenset({"NO_SOCKET"})))
    assert counts(report, reason="NO_SOCKET", protocol=0x0800) == 50
    assert counts(report) == 50  # the BPDUs were filtered out in the kernel


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*NETSLEUTH, "drops", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_run_with_a_report_and_leaves_nothing(
    pair: Pair, sig: signal.Signals
) -> None:
    before = tracing_state()
    proc = run_cli("--duration", "0", "--format", "json")
    wait_for_drops_event(proc.pid)
    no_ports = udp_no_ports(pair.b)  # the fixture's warm-up datagram is counted there too
    for i in range(40):
        pair.udp.sendto(b"%d" % i, (B_IP, CLOSED_PORT))
    # b's stack has dropped all 40 (it counts each just before its kfree_skb event), so
    # they are in the run's ring before the signal ends it; not a pause a busy host's late
    # softirq may outlast.
    wait_for_no_ports(pair.b, no_ports + 40)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert any("stopped by a signal" in n for n in doc["notes"])
    got = sum(
        d["count"] for d in doc["drops"] if d["reason"] == "NO_SOCKET" and d["protocol"] == 0x800
    )
    assert got == 40
    assert tracing_state() == before


def test_a_stale_instance_of_a_dead_run_is_removed() -> None:
    _need_root()
    from netsleuth.sources.tracefs import Tracefs

    fs = Tracefs.open()  # mounts tracefs if needed; the state below is taken with it
    try:
        before = tracing_state()
        child = subprocess.Popen(["true"])
        child.wait()
        stale = fs.root / "instances" / f"netsleuth-{child.pid}"
        stale.mkdir()
        report = trace(duration=0.2)
        assert not stale.exists()
        assert f"removed stale tracefs instance netsleuth-{child.pid}" in " ".join(report.notes)
        assert tracing_state() == before
    finally:
        fs.close()


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Effective uid/gid nobody for the block (the real uid stays 0 so it can come back).
    In-process: a child as nobody could not reach this interpreter under /root."""
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_without_root_drops_exits_3_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _need_root()
    from netsleuth.cli import main

    with as_nobody(), pytest.raises(SystemExit) as stop:
        main(["drops", "--duration", "1"])
    assert stop.value.code == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "needs root" in lines[0]


def test_the_kernel_refuses_an_instance_without_privilege() -> None:
    """Without the CLI's own check, the kernel's refusal is still exit 3, not a traceback."""
    _need_root()
    from netsleuth.errors import FacilityError

    before = tracing_state()
    with as_nobody(), pytest.raises(FacilityError, match="root"):
        trace(duration=0.1)
    assert tracing_state() == before
