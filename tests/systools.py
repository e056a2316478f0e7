"""The real tools some tests drive (installed by `make system-deps` from Debian packages):
their path, a skip saying what to install, or under CI=true a failure, so CI cannot pass
by skipping them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest


def require(command: str, package: str) -> str:
    path = shutil.which(command)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{command} is missing: `make test` installs Debian's {package} as root")
        pytest.skip(f"{command} not installed (apt-get install {package}; make system-deps)")
    return path


def dumpcap_in(ns: str, args: list[str], out: Path) -> subprocess.Popen[str]:
    """dumpcap with `args` in network namespace `ns`, writing `out`; returned once it is
    capturing (its file header written, then a moment for the kernel's ring)."""
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns}", "dumpcap", "-q", *args, "-w", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not out.exists() or out.stat().st_size == 0:  # the header: it is capturing
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "dumpcap did not start"
        time.sleep(0.05)
    time.sleep(0.5)
    return proc


def stop_dumpcap(proc: subprocess.Popen[str]) -> None:
    """End a dumpcap_in() capture as Ctrl-C does; it must exit cleanly."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
