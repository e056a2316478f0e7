"""SIGHUP, as a terminal that hangs up sends it (an ssh session that drops): the run unwinds as
under SIGTERM, removes what it made, and exits 129 (128 + SIGHUP, the shell's convention)
with one line on stderr when stderr is still there. `collect` is the case in point: its
bundle is built as a `.netsleuth-*.part` file or folder beside the target, renamed into
place only when complete."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft.mix import mixed_capture
from tests.procutil import (
    ENDINGS,
    ppid,
    session_members,
    start_in_session,
    wait_until_sleeping,
)

NETSLEUTH = [sys.executable, "-m", "netsleuth"]


LONG = ["--duration", "30", "--interval", "0.5"]  # collect: 61 samples, a hangup comes first


def _mid_run(proc: subprocess.Popen[Any], folder: Path) -> None:
    """Once the first sample is in the bundle being built, which is there to be left."""
    wait_until_sleeping(proc)
    assert [p.name for p in folder.iterdir() if p.name.endswith(".part")], "no bundle begun"


def _hung_up_mid_run(argv: list[str], folder: Path) -> tuple[int, str]:
    """`kill -HUP` once the run has begun its bundle in `folder`: (exit code, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _mid_run(proc, folder)
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


@pytest.mark.parametrize("name", ["host.tar.gz", "host"], ids=["tar", "folder"])
def test_sighup_mid_collect_exits_129_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code, err = _hung_up_mid_run([*NETSLEUTH, "collect", "-o", str(out / name), *LONG], out)
    assert code == 129, err
    assert err == "netsleuth: hung up\n"
    assert list(out.iterdir()) == []  # no .part, and no partial bundle under the name


def _controlling_terminal() -> None:
    """In the child, after setsid (start_new_session): stdin, the pty, becomes the session's
    controlling terminal, so that its hangup signals this process (tty_ioctl(4))."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@contextlib.contextmanager
def _on_a_terminal(argv: list[str]) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """netsleuth on a pseudo-terminal, as an ssh session's command runs, and the terminal's
    other side (closing it hangs the terminal up: the kernel sends SIGHUP to the session's
    leader, this netsleuth). Killed after the test if it is still running."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            # One ioctl, no lock taken: safe with other threads (subprocess has no option
            # for a controlling terminal).
            preexec_fn=_controlling_terminal,  # noqa: PLW1509
        )
    finally:
        os.close(slave)
    try:
        yield proc, master
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_terminal_that_hangs_up_ends_collect_with_nothing_left(tmp_path: Path) -> None:
    """The terminal's hangup itself, not a `kill -HUP`: stderr goes with the terminal, and
    the exit code is still 129, not 120 (the interpreter's own flush failing at exit)."""
    out = tmp_path / "out"
    out.mkdir()
    argv = [*NETSLEUTH, "collect", "-o", str(out / "host.tar.gz"), *LONG]
    with _on_a_terminal(argv) as (proc, master):
        _mid_run(proc, out)
        os.close(master)
        assert proc.wait(timeout=30) == 129
    assert list(out.iterdir()) == []


def test_a_terminal_that_hangs_up_under_watch_exits_129() -> None:
    """watch draws on the terminal with rich's Live, which puts the cursor back as it
    unwinds: after a hangup the tty answers that write with EIO, an OSError raised while
    the hangup unwinds. The run still ends as the hangup (129), not as an I/O error (2)."""
    with _on_a_terminal([*NETSLEUTH, "watch", "--interval", "0.2"]) as (proc, master):
        drawn = b""
        while b"per second" not in drawn:  # its first table is on the terminal
            assert proc.poll() is None, drawn
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"watch drew nothing in 30 s: {drawn!r}"
            drawn += os.read(master, 65536)
        os.close(master)
        assert proc.wait(timeout=30) == 129


def test_under_nohup_a_hangup_is_ignored_and_collect_completes(tmp_path: Path) -> None:
    """nohup starts a command with SIGHUP ignored to outlive the terminal: netsleuth keeps it
    ignored (netsleuth.signals.ending_signals) instead of ending on it."""
    nohup = shutil.which("nohup")
    if nohup is None:
        pytest.skip("no nohup (coreutils)")
    bundle = tmp_path / "host.tar.gz"
    argv = [nohup, *NETSLEUTH, "collect", "-o", str(bundle), "--duration", "1", "--interval", "0.5"]
    code, err = _hung_up_mid_run(argv, tmp_path)
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["host.tar.gz"]


def test_a_terminal_that_hangs_up_under_record_exits_129_with_its_database(
    tmp_path: Path,
) -> None:
    """record ends with its report on the first signal (signals.Stop): after a hangup that
    report goes to the terminal that hung up, which answers EIO. The run ends as the hangup
    (129), not as a write error (2, helper-53), and the samples it stored stay."""
    db = tmp_path / "r.db"

    def stored() -> int:
        with contextlib.closing(sqlite3.connect(db)) as con:
            return int(con.execute("SELECT count(*) FROM sample").fetchone()[0])

    argv = [*NETSLEUTH, "record", "--db", str(db), "--interval", "0.5"]
    with _on_a_terminal(argv) as (proc, master):
        deadline = time.monotonic() + 60
        while not (db.exists() and _readable(stored)):  # its first interval's rates stored
            assert proc.poll() is None and time.monotonic() < deadline, "record stored nothing"
            time.sleep(0.1)
        os.close(master)
        assert proc.wait(timeout=30) == 129
    assert stored() >= 1


def _readable(count: Callable[[], int]) -> bool:
    """Whether `count` reads a row or more (the database may be mid-creation)."""
    try:
        return count() > 0
    except sqlite3.Error:
        return False


# ----- workers from a fork server ------------------------------------------------------------
# netsleuth with a second thread running: scale.pool.context() then starts the workers from
# a fork server, as for a library caller with threads of its own, with multiprocessing's
# resource tracker beside it (both in the run's process group).
THREADED = (
    "import sys, threading, time\n"
    "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"
    "{before}"
    "from netsleuth.cliutil import entry\n"
    "sys.argv = ['netsleuth', *sys.argv[1:]]\n"
    "entry()\n"
)

# The signal the moment the pool's second worker has started (Process.start has returned),
# before the pool records it (concurrent.futures.process ProcessPoolExecutor._spawn_process).
ON_SECOND_START = (
    "import os, signal\n"
    "from multiprocessing.process import BaseProcess\n"
    "start, started = BaseProcess.start, []\n"
    "def signalled(self):\n"
    "    start(self)\n"
    "    started.append(self._start_method)\n"
    "    if started == ['forkserver', 'forkserver']:\n"
    "        os.kill({whom}, {signum})\n"
    "BaseProcess.start = signalled\n"
)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 packets of the bench mix (~105 MB, past cores.PROCESSES_MIN): four of them
    on two workers stay whole files, one job each (scale.planning.plan)."""
    path = tmp_path_factory.mktemp("mix") / "mix.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, mixed_capture(200_000))
    return path


@dataclass(frozen=True)
class Ended:
    """How a run ended: its exit code, its stderr, and what it left behind: the processes of
    its session still there 10 s later, its spill folders (scale._spill_root)."""

    code: int
    err: str
    processes: list[int]
    spill: list[str]


def _signalled(argv: list[str], send: Callable[[subprocess.Popen[bytes]], None]) -> Ended:
    """Run `argv` in a session of its own and `send` it a signal: how it ended (the
    processes it left are then killed, so that a failed test leaves none)."""
    proc = start_in_session(argv)
    try:
        send(proc)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while session_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        spill = glob.glob(f"/dev/shm/netsleuth-{proc.pid}-*")
        return Ended(proc.returncode, err.decode(), session_members(proc.pid), spill)
    finally:
        for pid in session_members(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _server_workers(parent: int) -> list[int]:
    """The fork server's children: the parent's grandchildren (its children are the fork
    server and the resource tracker)."""
    members = {pid: ppid(pid) for pid in session_members(parent)}
    children = [p for p, pp in members.items() if pp == parent]
    return [p for p, pp in members.items() if pp in children]


def test_a_hangup_to_the_group_ends_a_scan_on_fork_server_workers(capture: Path) -> None:
    """SIGHUP to the whole process group mid-run, as a terminal's hangup sends it, with the
    workers from a fork server: exit 129, the one line, nothing left. The resource tracker
    died of it (it ignores SIGINT and SIGTERM alone), and as the run ended the parent
    printed "resource_tracker: process died unexpectedly, relaunching" and the new tracker
    a KeyError traceback for each of the pool's semaphores (scale.pool._start_helpers)."""
    argv = [sys.executable, "-c", THREADED.format(before=""), "scan", "--workers", "2"]

    def mid_run(proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while len(_server_workers(proc.pid)) < 2:  # both workers run: 20 inputs go on
            assert proc.poll() is None and time.monotonic() < deadline, "no workers"
            time.sleep(0.05)
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGHUP)

    ended = _signalled([*argv, *[str(capture)] * 20], mid_run)
    assert ended == Ended(129, "netsleuth: hung up\n", [], [])


@pytest.mark.parametrize(("sig", "group", "code", "said"), ENDINGS)
def test_a_signal_as_a_fork_server_worker_starts(
    capture: Path, sig: signal.Signals, group: bool, code: int, said: str
) -> None:
    """The signal comes between a fork server worker's start and the pool recording it
    (ON_SECOND_START): the old code raised KeyboardInterrupt there, and the worker the pool
    never knew of took the stop sentinel meant for the other (the parent then waited for
    good: no exit at all) or stayed after the run, blocked on the pool's queue. Now it is
    taken once the submit has returned (scale.pool._held): one line, nothing left."""
    before = ON_SECOND_START.format(whom=0 if group else "os.getpid()", signum=int(sig))
    argv = [sys.executable, "-c", THREADED.format(before=before), "scan", "--workers", "2"]
    ended = _signalled([*argv, *[str(capture)] * 4], lambda proc: None)
    assert ended == Ended(code, f"netsleuth: {said}\n", [], [])
