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


def _running_packet_sockets(pid: int) -> int:
    """How many of process `pid`'s sockets are packet sockets the kernel delivers to: in
    /proc/PID/net/packet (its namespace's), column R (running) 1, matched by inode."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    rows = Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]
    # sk RefCnt Type Proto Iface R Rmem User Inode
    return sum(1 for r in rows if (f := r.split())[8] in inodes and f[5] == "1")


def dumpcap_in(ns: str, args: list[str], out: Path) -> subprocess.Popen[str]:
    """dumpcap with `args` in network namespace `ns`, writing `out`; returned once it is
    capturing: its file header written (dumpcap opens the interfaces and sets their
    filters first) and one running packet socket per interface in the kernel's table.
    Waited for: a busy host can take longer than any fixed pause."""
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
    interfaces = args.count("-i")
    while _running_packet_sockets(proc.pid) < interfaces:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "dumpcap has no running packet socket"
        time.sleep(0.05)
    return proc


def wait_for_frames(tshark: str, path: Path, where: str, count: int, timeout: float = 30) -> None:
    """Until the capture dumpcap writes at `path` holds `count` frames that the display
    filter `where` picks (or `timeout` has passed: the test's own checks then say what is
    missing). dumpcap writes a frame only once the kernel retires the ring block holding
    it and flushes its file now and then; frames still in the ring when it is stopped are
    lost, so a capture is stopped once its last expected frames are in the file, not after
    a fixed pause a busy host can overrun. tshark reads a file still being written, up to
    its last whole frame."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = subprocess.run(
            [tshark, "-n", "-r", str(path), "-Y", where, "-T", "fields", "-e", "frame.number"],
            capture_output=True,
            text=True,
            check=False,  # 2 when the file ends inside a frame being written
        ).stdout.split()
        if len(rows) >= count:
            return
        time.sleep(0.1)


def stop_dumpcap(proc: subprocess.Popen[str]) -> None:
    """End a dumpcap_in() capture as Ctrl-C does; it must exit cleanly."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
