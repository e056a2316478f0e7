"""profile on the real kernel: a UDP flood to a closed port across a veth pair between two
namespaces is found as NET_RX on the CPU that sends it (veth delivers through the sending
CPU's backlog, so pinning the sender pins the receive path), with the receive path among
the top inclusive functions; a busy loop pinned to the other CPU is user time. Every perf
descriptor and mapping is gone after a normal end, an error and SIGTERM; without the
capability the command exits 3 naming it. Needs root and two CPUs."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.profile.contexts import CONTEXTS
from netsleuth.profile.run import online_cpus, profile
from tests.clirun import invoke
from tests.netns import WARM_UP_PORT as CLOSED_PORT
from tests.netns import Pair, veth_pair

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.198.0.1", "10.198.0.2"
RX_CPU, USER_CPU = 0, 1
NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
RECEIVE_PATH = {"__netif_receive_skb_core", "__netif_receive_skb_one_core", "ip_rcv"}
SPIN = "while True:\n    pass\n"


def _need_perf() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: perf_event_open for every task of a CPU, network namespaces")
    if not Path("/proc/sys/kernel/perf_event_paranoid").exists():
        pytest.skip("this kernel has no perf events (CONFIG_PERF_EVENTS)")
    if not {RX_CPU, USER_CPU} <= set(online_cpus()):
        pytest.skip("needs CPUs 0 and 1: one takes the flood, one runs the user loop")


def perf_objects() -> tuple[int, int]:
    """(perf event descriptors, perf ring mappings) this process holds."""
    fds = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]"
        except OSError:
            continue
    maps = Path("/proc/self/maps").read_text().count("[perf_event]")
    return fds, maps


@pytest.fixture
def pair() -> Iterator[Pair]:
    _need_perf()
    with veth_pair("pf", A_IP, B_IP) as p:
        yield p


class Flood:
    """UDP to a closed port from a thread pinned to RX_CPU, until stopped."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.sent = 0

    def run(self) -> None:
        os.sched_setaffinity(0, {RX_CPU})  # this thread only
        while not self.stop.is_set():
            for _ in range(200):
                self.pair.udp.sendto(b"x" * 32, (B_IP, CLOSED_PORT))
            self.sent += 200

    def __enter__(self) -> Flood:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def test_flood_is_net_rx_with_the_receive_path_and_a_busy_loop_is_user(pair: Pair) -> None:
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {USER_CPU})  # the loop inherits it from its first instruction
    try:
        loop = subprocess.Popen([sys.executable, "-c", SPIN])
    finally:
        os.sched_setaffinity(0, mask)
    try:
        with Flood(pair) as flood:
            p = profile((RX_CPU, USER_CPU), 3.0, 499, on_start=flood.thread.start)
    finally:
        loop.kill()
        loop.wait()
    assert flood.sent > 1000
    assert p.malformed == 0  # each 64 KiB ring went round several times: every record walked
    rx = next(c for c in p.cpus if c.cpu == RX_CPU)
    assert rx.contexts["net_rx"] > 0
    top = [r.function for r in rx.net_rx_top[:10]]
    assert "net_rx_action" in top and "__udp4_lib_rcv" in top
    assert RECEIVE_PATH & set(top), top
    udp = next(r for r in rx.net_rx_top if r.function == "__udp4_lib_rcv")
    assert udp.callers[-1] == "net_rx_action" and udp.inclusive >= udp.self_samples
    mine = [s for s in p.stacks if s.pid == loop.pid]
    total = sum(s.count for s in mine)
    user = sum(s.count for s in mine if s.context == "user")
    assert total >= 20 and {s.cpu for s in mine} == {USER_CPU}
    assert user / total >= 0.9, [(s.context, s.frames[:3], s.count) for s in mine]
    assert perf_objects() == (0, 0)


def test_descriptors_and_mappings_are_closed_on_error_and_on_sigterm() -> None:
    _need_perf()
    before = signal.getsignal(signal.SIGTERM)

    def boom() -> None:
        # Per CPU: the event, the mmap object's duplicate of its descriptor, the ring.
        assert perf_objects() == (4, 2)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        profile((RX_CPU, USER_CPU), 5.0, 99, on_start=boom)
    assert perf_objects() == (0, 0)
    assert signal.getsignal(signal.SIGTERM) is before
    for sig in (signal.SIGINT, signal.SIGTERM):
        p = profile((RX_CPU,), 30.0, 99, on_start=functools.partial(os.kill, os.getpid(), sig))
        assert p.seconds < 5 and any("stopped by a signal" in n for n in p.notes)
        assert perf_objects() == (0, 0)
    assert signal.getsignal(signal.SIGTERM) is before


def test_cli_json_and_folded_stacks(tmp_path: Path) -> None:
    _need_perf()
    folded = tmp_path / "stacks.folded"
    args = "profile --cpus 0 --duration 1 --frequency 199 --format json --folded"
    run = subprocess.run(
        [NETSLEUTH, *args.split(), str(folded)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert (doc["command"], doc["frequency"], list(doc)[-1]) == ("profile", 199, "findings")
    (cpu,) = doc["cpus"]
    assert cpu["cpu"] == 0 and cpu["samples"] > 50  # 199 Hz for 1 s, minus VM steal
    assert set(cpu["contexts"]) == set(CONTEXTS)
    assert abs(sum(cpu["contexts"].values()) - 1) < 0.01
    lines = folded.read_text().splitlines()
    ctx = "|".join(CONTEXTS)
    assert all(re.fullmatch(rf"\[cpu0\];\[({ctx})\](;[^ ;]+)* \d+", x) for x in lines), lines
    assert sum(int(x.rsplit(" ", 1)[1]) for x in lines) == cpu["samples"]


def open_files(pid: int) -> list[str]:
    """What a running process has open. A descriptor it closes between the listing and
    the readlink is skipped: the process is starting up, opening and closing files."""
    out = []
    for n in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            out.append(os.readlink(f"/proc/{pid}/fd/{n}"))
    return out


def test_sigterm_ends_an_open_ended_run_with_a_report() -> None:
    _need_perf()
    proc = subprocess.Popen(
        [NETSLEUTH, "profile", "--cpus", "0", "--duration", "0", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The rings exist once the run is sampling: wait for them, then stop it.
        for _ in range(100):
            if "anon_inode:[perf_event]" in open_files(proc.pid):
                break
            threading.Event().wait(0.1)
        else:
            pytest.fail("profile never opened its perf event")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.communicate()  # reaped, its pipes closed, whatever happened above
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert any("stopped by a signal" in n for n in doc["notes"])


def test_without_the_capability_exit_3_names_it() -> None:
    _need_perf()
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    if paranoid <= 0:
        pytest.skip(f"kernel.perf_event_paranoid is {paranoid}: anyone may profile a CPU")
    drop = "-perfmon,-sys_admin"
    setpriv = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]
    run = subprocess.run(
        [*setpriv, NETSLEUTH, "profile", "--cpus", "0", "--duration", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3, run.stderr
    assert run.stdout == ""
    assert "CAP_PERFMON" in run.stderr and "perf_event_paranoid" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("hot", [True, False])
def test_doctor_profile_profiles_the_hotspot_cpu(
    monkeypatch: pytest.MonkeyPatch, hot: bool
) -> None:
    _need_perf()
    import netsleuth.doctor as doc

    real = doc.doctor_live

    def live(count: int, interval: float, on_sample: object = None) -> doc.Diagnosis:
        # A host whose hotspot comes and goes is not a test: the finding doctor's rule
        # would make for CPU 0 is added (or every hotspot removed) on a real diagnosis.
        d = real(count, interval)
        d.findings[:] = [f for f in d.findings if f.id != "host.softirq_hotspot"]
        if hot:
            d.findings.append(catalogue_finding("host.softirq_hotspot", 1, evidence={"cpu": 0}))
        return d

    monkeypatch.setattr(doc, "doctor_live", live)
    args = ["doctor", "--profile", "--samples", "2", "--interval", "0.2"]
    out = invoke(*args, "--profile-duration", "1", "--format", "json", code=0).json()
    if hot:
        assert [c["cpu"] for c in out["profile"]["cpus"]] == [0]
        assert out["profile"]["cpus"][0]["samples"] > 0
    else:
        assert out["profile"] is None
