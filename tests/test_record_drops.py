"""record --drops and exporter --drops on the real kernel: datagrams sent to a closed UDP
port in a private network namespace are dropped by the receiving stack (NO_SOCKET); both
commands see them, stop cleanly on SIGTERM and leave no tracefs instance behind. Needs root.
The counts are lower bounds: other processes on the host may drop IPv4 too."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netsleuth.record.schema import open_db
from netsleuth.record.store import read
from tests.netns import WARM_UP_PORT as CLOSED_PORT
from tests.netns import Pair, veth_pair
from tests.tracefsutil import instance_of, wait_for_drops_event

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.199.16.1", "10.199.16.2"
NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
SENT = 30


@pytest.fixture
def pair(tracefs_root: Path) -> Iterator[Pair]:
    """A veth pair, with tracefs mounted (the host's, or ours) until the test's checks end:
    the run's instance is looked for there after the run has gone."""
    with veth_pair("rd", A_IP, B_IP) as p:
        yield p


def send(pair: Pair) -> None:
    for i in range(SENT):
        pair.udp.sendto(b"%d" % i, (B_IP, CLOSED_PORT))


def test_record_stores_drop_groups(pair: Pair, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen(
        [NETSLEUTH, "record", "--db", str(db), "--drops", "--interval", "0.5"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_drops_event(proc.pid)
    send(pair)
    time.sleep(1.6)  # the drops land in a tick that ends before the signal
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    inst = instance_of(proc.pid)
    assert inst is not None and not inst.exists()
    got = read(open_db(db, create=False))
    no_socket = {k: v for k, v in got.drops.items() if k[1:] == ("NO_SOCKET", 0x800)}
    assert sum(v.sum() for v in no_socket.values()) >= SENT
    assert all(not loc.startswith("0x") for loc, _, _ in no_socket)  # named functions
    assert len(got.times) >= 2


def test_exporter_counts_kernel_drops(pair: Pair) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [NETSLEUTH, "exporter", "--drops", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_drops_event(proc.pid)
        send(pair)
        time.sleep(1.6)  # the tracer's 1 s tick adds them to the totals
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    inst = instance_of(proc.pid)
    assert inst is not None and not inst.exists()
    drops = [
        s
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "netsleuth_kernel_drops_total"
    ]
    mine = [
        s for s in drops if s.labels["reason"] == "NO_SOCKET" and s.labels["protocol"] == "IPv4"
    ]
    assert sum(s.value for s in mine) >= SENT
    assert len(drops) <= 50
