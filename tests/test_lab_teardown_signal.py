"""A second SIGINT while the lab tears down (root): the tracefs instance and session and
the namespaces are still removed. The first SIGINT ends the replay (or the stgw-rps
measurement); the second is sent from inside Tracer.stop and Tracefs.close, the very
teardown it could cut short."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.privileged

CHILD = """
import os, signal, sys, time
from netsleuth.craft import ether, ipv4, udp
from netsleuth.lab import replay, rps, trace
from netsleuth.sources import tracefs

def second_signal_inside(orig, tag):
    def run(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the signal is delivered here unless it is blocked
        orig(self)
        print(tag, flush=True)
    return run

trace.Tracer.stop = second_signal_inside(trace.Tracer.stop, "tracer stopped")
tracefs.Tracefs.close = second_signal_inside(tracefs.Tracefs.close, "session closed")

def first_signal(*_args):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)

if sys.argv[1] == "replay":
    a, b = "192.0.2.1", "192.0.2.80"
    frame = ether(ipv4(a, b, udp(a, b, 1234, 9, b"x"), 17), 0x0800)
    replay.run([replay.Record(1, 1, frame)], replay.Options(), after=first_signal)
else:
    rps._measure = first_signal
    rps.run_rps(flows=2)
"""


@pytest.mark.parametrize("lab", ["replay", "rps"])
def test_a_second_sigint_during_teardown_leaves_nothing(lab: str, tracefs_root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, tracefs, AF_PACKET)")
    fs = tracefs_root
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, lab],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "Interrupted: SIGINT" in err, err
    # Both teardown steps ran to their end despite the signal sent inside each.
    assert out.split("\n")[:2] == ["tracer stopped", "session closed"], err
    # Other labs may be running on the host: only this child's names count.
    mine = (f"netsleuth-{child.pid}-a", f"netsleuth-{child.pid}-b", f"netsleuth-{child.pid}")
    assert not [n for n in mine[:2] if (Path("/run/netns") / n).exists()]
    assert not (fs / "instances" / mine[2]).exists()
