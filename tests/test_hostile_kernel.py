"""Hostile conditions that need root and the real kernel (issue 13): a full disk under an
export, tracefs unmounted while two drops runs share it, SIGTERM at every moment of start-up,
a stale tracefs instance whose pid now belongs to another program. tracefs is unmounted only
inside a private mount namespace (unshare), so other users of this host see nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from tests.childrun import NETSLEUTH, run

pytestmark = pytest.mark.privileged


def _need_root(*tools: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts and tracefs")
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing")


def test_an_export_that_fills_the_disk_leaves_the_old_file(tmp_path: Path) -> None:
    _need_root("mount")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], check=True)
    try:
        (small / "out.pcapng").write_bytes(b"old")
        cap = tmp_path / "in.pcap"
        with open(cap, "wb") as fh:
            write_pcap(fh, incidents.incident1_poison_fragment(normal=2000))
        r = run("scan", "--context", "1000", "--export", str(small / "out.pcapng"), str(cap))
        assert r.code == 2 and "No space left on device" in r.one_line()
        assert (small / "out.pcapng").read_bytes() == b"old"
        assert [p.name for p in small.iterdir()] == ["out.pcapng"]  # no partial file
    finally:
        subprocess.run(["umount", str(small)], check=True)


# Run inside `unshare --mount --propagation private`: tracefs is unmounted there only.
NS_SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    cli = sys.argv[1:]
    for m in ("/sys/kernel/tracing", "/sys/kernel/debug"):
        subprocess.run(["umount", m], stderr=subprocess.DEVNULL)
    def mounts():
        return open("/proc/mounts").read().count(" tracefs ")
    out = {"before": mounts()}
    # A runs until B has ended (SIGTERM: a clean end with its report), so B is always the
    # first to leave; B starts once A's instance exists, so A has mounted tracefs and
    # registered as its user by then. Waited for, not slept for: a busy host's start-up
    # can take longer than any fixed pause.
    a = subprocess.Popen(cli + ["drops", "--duration", "120", "--format", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    mine = f"/sys/kernel/tracing/instances/netsleuth-{a.pid}"
    deadline = time.monotonic() + 60
    while not os.path.isdir(mine) and a.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    b = subprocess.Popen(cli + ["drops", "--duration", "0.3", "--format", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    o, e = b.communicate(timeout=60)
    out["b"] = {"code": b.returncode, "err": e.decode(), "doc": json.loads(o or b"{}")}
    a.terminate()
    o, e = a.communicate(timeout=60)
    out["a"] = {"code": a.returncode, "err": e.decode(), "doc": json.loads(o or b"{}")}
    out["after_pair"] = mounts()
    left = 0
    for i in range(12):
        p = subprocess.Popen(cli + ["drops", "--duration", "5", "--format", "json"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.05 + 0.08 * i)
        p.terminate()
        _, e = p.communicate(timeout=30)
        if "Traceback" in e.decode():
            out.setdefault("tracebacks", []).append(e.decode())
        if mounts():
            left += 1
            subprocess.run(["umount", "/sys/kernel/tracing"])
    out["left_after_sigterm"] = left
    print(json.dumps(out))
    """
)


def test_tracefs_mount_is_shared_counted_and_removed(tmp_path: Path) -> None:
    _need_root("unshare", "umount")
    if not Path("/sys/kernel/tracing").is_dir():
        pytest.skip("no /sys/kernel/tracing mount point")
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            NS_SCRIPT,
            *NETSLEUTH,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["before"] == 0
    a, b = out["a"], out["b"]
    assert a["code"] == 0 and b["code"] == 0, (a["err"], b["err"])
    # A mounted it; B shared it and left first; A, the last user, unmounted it.
    assert "mounted tracefs at /sys/kernel/tracing for this run" in a["doc"]["notes"]
    assert (
        "unmounted tracefs at /sys/kernel/tracing (netsleuth had mounted it)" in a["doc"]["notes"]
    )
    assert "mounted tracefs at /sys/kernel/tracing for this run" not in b["doc"]["notes"]
    assert not any("unmounted" in n for n in b["doc"]["notes"])
    assert any(n.startswith("stopped by a signal") for n in a["doc"]["notes"])  # outlived B
    assert out["after_pair"] == 0
    assert out["left_after_sigterm"] == 0  # 5 of 20 timed SIGTERMs left it before
    assert "tracebacks" not in out


def test_a_stale_instance_whose_pid_was_reused_is_removed(tracefs_root: Path) -> None:
    _need_root()
    root = tracefs_root
    other = subprocess.Popen(["sleep", "60"])  # alive, and not netsleuth
    stale = root / "instances" / f"netsleuth-{other.pid}"
    try:
        stale.mkdir()
        r = run("drops", "--duration", "0.2", "--format", "json")
        assert r.code == 0, r.err
        assert not stale.exists()
        notes = json.loads(r.out)["notes"]
        assert (
            f"removed stale tracefs instance netsleuth-{other.pid} (its process is gone)" in notes
        )
    finally:
        other.kill()
        other.wait()
        if stale.exists():
            stale.rmdir()


# Two handles in one process (a test holding tracefs while the run it starts opens its own,
# or the lab's tracer beside a drops run), inside a private mount namespace as above.
TWO_HANDLES = textwrap.dedent(
    """
    import subprocess
    from netsleuth.sources.tracefs import Tracefs
    for m in ("/sys/kernel/tracing", "/sys/kernel/debug"):
        subprocess.run(["umount", m], stderr=subprocess.DEVNULL)
    def mounts():
        return open("/proc/mounts").read().count(" tracefs ")
    first = Tracefs.open()
    second = Tracefs.open()
    second.close()
    between = mounts()
    first.close()
    print(between, mounts(), second.outcome, "|", first.outcome)
    """
)


def test_the_first_of_two_handles_in_one_process_leaves_tracefs_mounted() -> None:
    _need_root("unshare", "umount")
    if not Path("/sys/kernel/tracing").is_dir():
        pytest.skip("no /sys/kernel/tracing mount point")
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c", TWO_HANDLES],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Users were counted by pid: the second handle's close found none left and unmounted
    # tracefs under the first (session 14 saw it on a host that does not mount it at boot).
    assert proc.stdout.strip() == (
        "1 0 None | unmounted tracefs at /sys/kernel/tracing (netsleuth had mounted it)"
    )
