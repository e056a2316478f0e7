"""exporter: rates over the scrape interval on the monotonic clock, and the device cap
keeps the real NIC: on a node with a hundred container devices
(cali*, br-*, docker*, veth*) that sort before it, eth0 (backed by a bus device) is
exported, and the devices left out are counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from netsleuth.exporter import collector
from netsleuth.exporter.collector import MAX_DEVICES, HostCollector
from netsleuth.sources.hostfs import read_snapshot

CONTAINER_PREFIXES = ("br-", "cali", "docker", "veth")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def node(root: Path, containers: int) -> list[str]:
    """sys/class/net as a Kubernetes node shows it: virtual devices with counters, and one
    NIC whose `device` entry is its bus device (here a directory standing for the link)."""
    names = [f"{CONTAINER_PREFIXES[i % 4]}{i:03d}" for i in range(containers)]
    for dev in [*names, "eth0"]:
        write(root / f"sys/class/net/{dev}/statistics/rx_dropped", "7\n")
        write(root / f"sys/class/net/{dev}/statistics/rx_packets", "1000\n")
    (root / "sys/class/net/eth0/device").mkdir()
    write(root / "proc/net/softnet_stat", "00000010 00000000 00000000\n")
    return names


def scrape(c: HostCollector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(c)
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_the_real_nic_survives_the_device_cap(tmp_path: Path) -> None:
    names = node(tmp_path, 100)
    assert sorted([*names, "eth0"])[:MAX_DEVICES] == sorted(names)[:MAX_DEVICES]  # no eth0
    got = scrape(HostCollector(lambda: read_snapshot(tmp_path), root=tmp_path))
    devices = {dict(k)["device"] for k in got["netsleuth_netdev_rx_dropped_total"]}
    assert "eth0" in devices
    assert len(devices) == MAX_DEVICES
    assert got["netsleuth_exporter_devices_omitted"][()] == 101 - MAX_DEVICES


def test_nothing_omitted_on_a_small_host(tmp_path: Path) -> None:
    node(tmp_path, 3)
    got = scrape(HostCollector(lambda: read_snapshot(tmp_path), root=tmp_path))
    assert len(got["netsleuth_netdev_rx_dropped_total"]) == 4
    assert got["netsleuth_exporter_devices_omitted"][()] == 0


HOST128 = Path(__file__).parent / "fixtures" / "host128"


class SteppingClock:
    """time for the collector: one real second between scrapes on the monotonic clock,
    while the wall clock steps by `step` seconds."""

    def __init__(self, step: float) -> None:
        self.mono = 0.0
        self.step = step
        self.wall = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def perf_counter(self) -> float:
        return self.mono

    def advance(self) -> None:
        self.mono += 1.0
        self.wall += 1.0 + self.step


@pytest.mark.parametrize("step", [-3600.0, 86400.0])
def test_rate_findings_ignore_wall_clock_steps(
    step: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """host128's t0 -> t1 is one second of a softirq hotspot: it fires over the scrape
    interval whatever the wall clock did meanwhile (a step back used to leave only the
    static rules, a step forward divided the rates by a day)."""
    clock = SteppingClock(step)
    monkeypatch.setattr(collector, "time", clock)
    snaps = [read_snapshot(HOST128 / "t0"), read_snapshot(HOST128 / "t1")]
    c = HostCollector(lambda: snaps.pop(0))
    scrape(c)
    clock.advance()
    active = scrape(c)["netsleuth_finding_active"]
    assert active[(("id", "host.softirq_hotspot"), ("severity", "warning"))] == 1
