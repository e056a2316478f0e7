"""record --drops and exporter --drops on the real kernel: datagrams sent to a closed UDP
port in a private network namespace are dropped by the receiving stack (NO_SOCKET); both
commands see them, stop cleanly on SIGTERM and leave no tracefs instance behind. Needs root.
The counts are lower bounds: other processes on the host may drop IPv4 too."""

from __future__ import annotations

import contextlib
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
from prometheus_client.samples import Sample

from netsleuth.record.schema import open_db
from netsleuth.record.store import Recording, read
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


def no_socket(got: Recording) -> int:
    """The IPv4 NO_SOCKET drops of every group a recording holds."""
    return int(sum(v.sum() for k, v in got.drops.items() if k[1:] == ("NO_SOCKET", 0x800)))


def committed(db: Path, timeout: float = 60.0) -> None:
    """Until record has committed SENT IPv4 NO_SOCKET drops and a second sample to `db`
    (or `timeout` has passed: the test's own checks then say what is missing). A drop
    interval's groups are stored with the sample that ends it, so the drops of the one
    still running at SIGTERM would be lost; polled, as its read-only readers may while it
    writes (WAL), not slept for: a busy host's ticks can come later than any pause."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(open_db(db, create=False)) as conn:
            got = read(conn)
        if no_socket(got) >= SENT and len(got.times) >= 2:
            return
        time.sleep(0.1)


def kernel_drops(text: str) -> list[Sample]:
    """The netsleuth_kernel_drops_total samples of an exporter's /metrics text."""
    return [
        s
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == "netsleuth_kernel_drops_total"
    ]


def no_socket_metric(drops: list[Sample]) -> float:
    return sum(
        s.value
        for s in drops
        if s.labels["reason"] == "NO_SOCKET" and s.labels["protocol"] == "IPv4"
    )


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
    committed(db)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    inst = instance_of(proc.pid)
    assert inst is not None and not inst.exists()
    got = read(open_db(db, create=False))
    assert no_socket(got) >= SENT
    groups = [k for k in got.drops if k[1:] == ("NO_SOCKET", 0x800)]
    assert all(not loc.startswith("0x") for loc, _, _ in groups)  # named functions
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
        # The tracer's 1 s tick adds them to the totals /metrics shows: scraped until they
        # are all there (a busy host's tick can come later than any pause), or 60 s have
        # passed and the checks below say what is missing.
        deadline = time.monotonic() + 60
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            if no_socket_metric(kernel_drops(text)) >= SENT or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    inst = instance_of(proc.pid)
    assert inst is not None and not inst.exists()
    drops = kernel_drops(text)
    assert no_socket_metric(drops) >= SENT
    assert len(drops) <= 50
