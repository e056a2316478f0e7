"""The processes of a run started in its own session (start_new_session=True): a parent,
its forkserver and the workers, read from /proc (proc(5): stat fields 4 ppid, 6 session);
and a process's wait for its next sample (wchan)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

# How a run ends on each signal that ends it, as a terminal or a supervisor sends it: Ctrl-C
# and a hangup to the whole process group, SIGTERM to the parent alone. (signal, to the
# group, exit code, the one stderr line's words), for pytest.mark.parametrize.
ENDINGS = [
    pytest.param(signal.SIGINT, True, 130, "interrupted", id="sigint-to-group"),
    pytest.param(signal.SIGHUP, True, 129, "hung up", id="sighup-to-group"),
    pytest.param(signal.SIGTERM, False, 143, "terminated", id="sigterm-to-parent"),
]


def start_in_session(argv: list[str]) -> subprocess.Popen[bytes]:
    """`argv` in a session of its own (a signal to its group reaches it and its workers
    alone), stderr piped. A suite run as a background job of a non-interactive shell has
    SIGINT ignored, which a child inherits (and Python then keeps it ignored): handled
    here, it is reset to the default in the child by exec."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
    finally:
        signal.signal(signal.SIGINT, old)


def _stat_fields(pid: int | str) -> list[str]:
    """The fields after the command name (which may hold spaces and parentheses)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def session_members(sid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat_fields(entry)
            except OSError:
                continue
            if int(fields[3]) == sid:  # field 6, session
                out.append(int(entry))
    return out


def ppid(pid: int) -> int:
    try:
        return int(_stat_fields(pid)[1])  # field 4
    except OSError:
        return -1


def wait_until_sleeping(proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until `proc` sleeps in clock_nanosleep (Python's time.sleep; /proc/PID/wchan names
    the kernel function it waits in, proc(5)). doctor and collect sleep only between two
    samples (netsleuth.doctor.take_samples), so this is "the first sample is taken": a
    start-up on a busy host can take longer than any fixed pause."""
    deadline = time.monotonic() + timeout
    wchan, unnamed = "", 0
    while "nanosleep" not in wchan:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr is not None else ""
            raise AssertionError(f"{proc.args!r} ended ({proc.returncode}) before sleeping: {err}")
        assert time.monotonic() < deadline, f"{proc.args!r} never slept (wchan {wchan!r})"
        time.sleep(0.01)
        try:
            wchan = Path(f"/proc/{proc.pid}/wchan").read_text()
        except OSError:
            wchan = ""
        # 0 while running; 0 asleep too on a kernel that names no wait channel. Taken for
        # the latter after 20 polls in a row (a sample takes ~10 ms), then the fixed pause
        # these tests used before, the best left to go by (helper-49: a task seen running,
        # then asleep, is not enough).
        unnamed = unnamed + 1 if wchan == "0" and _state(proc.pid) == "S" else 0
        if unnamed >= 20:
            time.sleep(1.2)
            return


def _state(pid: int) -> str:
    try:
        return _stat_fields(pid)[0]  # field 3
    except (OSError, IndexError):
        return ""
