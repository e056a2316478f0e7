"""Run netsleuth in a child process and measure what a hostile input costs it: exit code,
stdout, stderr, wall time and peak RSS.

The peak is ru_maxrss from wait4, taken by a small launcher: a child forked straight from
pytest starts with pytest's own resident pages counted in its high-water mark (ru_maxrss
survives exec), so the launcher (a fresh, small Python) forks and execs netsleuth, forwards
SIGINT/SIGTERM to it, and writes its ru_maxrss to a pipe."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

NETSLEUTH = [sys.executable, "-m", "netsleuth"]
LAUNCHER = """
import os, signal, sys
fd = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(fd)
    os.execv(sys.argv[2], sys.argv[2:])
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, lambda n, f: os.kill(pid, n))
while True:
    try:
        _, status, usage = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
os.write(fd, str(usage.ru_maxrss).encode())
code = os.waitstatus_to_exitcode(status)
os._exit(128 - code if code < 0 else code)
"""


@dataclass(frozen=True)
class Run:
    code: int
    out: bytes
    err: bytes
    seconds: float
    peak_mb: float

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    def one_line(self) -> str:
        """The single stderr line of a refused input, with no traceback anywhere."""
        text = self.err.decode("utf-8", "replace")
        assert "Traceback" not in text, text
        lines = text.splitlines()
        assert len(lines) == 1, text
        return lines[0]

    def no_traceback(self) -> None:
        text = self.err.decode("utf-8", "replace")
        assert "Traceback" not in text and "Exception ignored" not in text, text


def _handles_sigterm(launcher: int) -> bool:
    """Whether the launcher's child (netsleuth) catches SIGTERM yet (SigCgt, proc(5))."""
    try:
        with open(f"/proc/{launcher}/task/{launcher}/children") as fh:
            kids = fh.read().split()
        if not kids:
            return False
        with open(f"/proc/{kids[0]}/status") as fh:
            for line in fh:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except OSError:
        return False
    return False


def run(
    *args: str,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    signal_after: tuple[float, int] | None = None,
    close_stdin: bool = False,
) -> Run:
    t0 = time.monotonic()
    peak_r, peak_w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(peak_w), *NETSLEUTH, *args],
        pass_fds=(peak_w,),
        start_new_session=True,  # the launcher and netsleuth: one group to kill on a hang
        stdin=None if close_stdin else stdin,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        # `<&-`: the child starts with fd 0 closed (no threads here to make it unsafe).
        preexec_fn=(lambda: os.close(0)) if close_stdin else None,  # noqa: PLW1509
    )
    pipes = {f: b"" for f in (proc.stdout, proc.stderr) if f is not None}
    sel = selectors.DefaultSelector()
    for f in pipes:
        sel.register(f, selectors.EVENT_READ)
    deadline = t0 + timeout
    # The delay counts from when netsleuth has its SIGTERM handler (cliutil.install_signals,
    # its first act): a loaded machine can take longer than any fixed delay to start Python.
    signal_at = None
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            os.close(peak_w)
            os.close(peak_r)
            raise AssertionError(f"netsleuth {' '.join(args)} ran past {timeout} s")
        if signal_after is not None and signal_at is None and _handles_sigterm(proc.pid):
            signal_at = now + signal_after[0]
        if signal_at is not None and signal_after is not None and now >= signal_at:
            proc.send_signal(signal_after[1])
            signal_after = None
        wait = min(deadline, signal_at or deadline) - now
        if signal_after is not None and signal_at is None:
            wait = min(wait, 0.01)
        for key, _ in sel.select(timeout=max(wait, 0.01)):
            chunk = os.read(key.fd, 65536)
            if chunk:
                # The selector's file objects are the two pipes `pipes` is keyed by.
                pipes[key.fileobj] += chunk  # type: ignore[index]
            else:
                sel.unregister(key.fileobj)
    proc.wait()
    os.close(peak_w)
    with os.fdopen(peak_r, "rb") as fh:
        peak_kib = int(fh.read() or b"0")
    for f in pipes:
        f.close()
    if proc.stdin is not None:
        proc.stdin.close()
    return Run(
        proc.returncode,
        # `pipes` is keyed by the two pipes, typed as the selector's file objects.
        pipes.get(proc.stdout, b""),  # type: ignore[arg-type]
        pipes[proc.stderr],  # type: ignore[index]
        time.monotonic() - t0,
        peak_kib / 1024,  # ru_maxrss is in KiB on Linux (getrusage(2))
    )
