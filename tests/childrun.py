"""Run netsleuth in a child process and measure what a hostile input costs it: exit code,
stdout, stderr, wall time and peak RSS (ru_maxrss of that child alone, from os.wait4)."""

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
    proc = subprocess.Popen(
        [*NETSLEUTH, *args],
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
    signal_at = t0 + signal_after[0] if signal_after else None
    while sel.get_map():
        now = time.monotonic()
        if now >= deadline:
            os.kill(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            raise AssertionError(f"netsleuth {' '.join(args)} ran past {timeout} s")
        if signal_at is not None and signal_after is not None and now >= signal_at:
            proc.send_signal(signal_after[1])
            signal_at = None
        wait = min(deadline, signal_at or deadline) - now
        for key, _ in sel.select(timeout=max(wait, 0.01)):
            chunk = os.read(key.fd, 65536)
            if chunk:
                pipes[key.fileobj] += chunk  # type: ignore[index]
            else:
                sel.unregister(key.fileobj)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for f in pipes:
        f.close()
    if proc.stdin is not None:
        proc.stdin.close()
    return Run(
        proc.returncode,
        pipes.get(proc.stdout, b""),  # type: ignore[arg-type]
        pipes[proc.stderr],  # type: ignore[index]
        time.monotonic() - t0,
        usage.ru_maxrss / 1024,  # KiB on Linux (getrusage(2))
    )
