"""`watch` on this host: plain lines in a pipe, a rich table under a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))


def test_in_a_pipe_one_plain_line_per_cpu_and_device() -> None:
    out = subprocess.run(
        [NETSLEUTH, "watch", "--count", "2", "--interval", "0.3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    online = len(Path("/proc/net/softnet_stat").read_text().splitlines())  # a line per CPU
    cpu_lines = re.findall(r"^\d\d:\d\d:\d\d cpu\d+ net_rx=\d+/s softirq=[\d.]+% ", out, re.M)
    assert len(cpu_lines) == 2 * online
    assert re.search(r"^\d\d:\d\d:\d\d lo rx=\d+/s dropped=", out, re.M)
    assert "\x1b[" not in out  # no terminal escapes in a pipe


def test_under_a_pseudo_terminal_a_live_table() -> None:
    pid, fd = pty.fork()
    if pid == 0:  # child: the terminal is its stdout
        os.environ["COLUMNS"] = "120"
        os.execv(NETSLEUTH, [NETSLEUTH, "watch", "--count", "2", "--interval", "0.3"])
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 1.0)
        if not r:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert os.WEXITSTATUS(status) == 0, out
    assert "per CPU, per second" in out and "per device, per second" in out
    assert "\x1b[" in out  # rich drew on the terminal
