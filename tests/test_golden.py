"""Golden text outputs: what an on-call engineer reads on a terminal for scan, steer and
doctor, compared whole (a changed word, column or order fails), on a fixed-width console.

After a reviewed change to a renderer, regenerate with `make golden` (the same tests with
NETSLEUTH_REGEN_GOLDEN=1, which rewrite tests/golden/*.txt) and read the diff before
committing it. When a golden file was first written its numbers were checked against
independent facts (tshark on the same capture, a Toeplitz hash computed apart, counters
chosen by hand): tests/golden/README.md says how for each."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.sources.bundle import write_bundle
from tests.clirun import invoke
from tests.hostutil import busy

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("NETSLEUTH_REGEN_GOLDEN") == "1"
# 100 columns, no colour whatever the environment of the run says.
CONSOLE = {"COLUMNS": "100", "FORCE_COLOR": None, "NO_COLOR": "1", "TTY_COMPATIBLE": None}


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(text)
        return
    assert path.exists(), f"no {path}: run `make golden`, check it and commit it"
    assert text == path.read_text(), f"{name} changed: run `make golden` and review the diff"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Inputs named relative to the working directory, so the text holds no tmp path."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def capture(path: Path, frames: list[tuple[int, bytes]]) -> str:
    with open(path, "wb") as fh:
        write_pcap(fh, frames)
    return path.name


def test_scan_incident1(here: Path) -> None:
    cap = capture(here / "i1.pcap", incidents.incident1_poison_fragment())
    golden("scan-incident1.txt", invoke("scan", cap, env=CONSOLE, code=0).out)


def test_scan_incident2(here: Path) -> None:
    cap = capture(here / "i2.pcap", incidents.incident2_stp_llc(seconds=5))
    golden("scan-incident2.txt", invoke("scan", cap, env=CONSOLE, code=0).out)


def test_steer_incident3_pptp(here: Path) -> None:
    cap = capture(here / "i3.pcap", incidents.incident3_pptp(flows=20, packets_per_flow=5))
    ran = invoke("steer", "--rps-cpus", "0-7", "--kernel", "4.9", cap, env=CONSOLE, code=0)
    golden("steer-incident3-pptp.txt", ran.out)


def test_doctor_bundle_backlog_drops_and_a_hot_queue(here: Path) -> None:
    """Two samples 2 s apart of a 4-CPU host: CPU 2 drops 900 packets from its backlog and
    queue 0 takes four times its share."""
    a, b = busy(1), busy(2)
    b.dropped = [0, 0, 900, 0]
    b.queue_packets = [b.queue_packets[0] * 4, *b.queue_packets[1:]]
    write_bundle(here / "b.tar.gz", [(1000.0, a.snapshot()), (1002.0, b.snapshot())], {})
    ran = invoke("doctor", "--bundle", "b.tar.gz", env=CONSOLE, code=0)
    golden("doctor-bundle.txt", ran.out)


def test_listen_64_ports_of_10_sockets(here: Path) -> None:
    """A /proc/net/tcp of 64 listening ports (20000-20063), 10 sockets each."""
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
    rows = [
        f"{sl:4d}: 00000000:{20000 + sl // 10:04X} 00000000:0000 0A 00000000:00000000 "
        f"00:00000000 00000000     0        0 {100000 + sl} 1 0 100 0 0 10 0"
        for sl in range(640)
    ]
    net = here / "root" / "proc" / "net"
    net.mkdir(parents=True)
    (net / "tcp").write_text("\n".join([head + "  timeout inode", *rows]) + "\n")
    ran = invoke("listen", "--root", "root", "--kernel", "4.9", env=CONSOLE, code=0)
    assert ran.err_lines() == ["netsleuth: root/proc/net/tcp6 is absent: skipped"]
    golden("listen-64-ports.txt", ran.out)
