"""A prometheus-client collector that reads the host at each scrape (pure apart from the
read function it is given), and the drop totals the tracer feeds it.

Wrap safety: softnet_stat columns, /proc/softirqs and the per-CPU interrupt counts are
unsigned 32-bit in the kernel (struct softnet_data, irq_cpustat / kstat_irqs) and wrap after
4.3 G events, which a busy CPU reaches in hours. Prometheus would read a wrap as a counter
reset and lose up to 2**32 events in rate(); so those are exported as 64-bit totals this
exporter accumulates modulo 2**32 between scrapes (host.rates.d32). Device and ethtool
counters are 64-bit in the kernel and exported as read: a decrease there is a real reset.

Labels are bounded: cpu (the host's CPUs), device and queue (the host's NICs, at most
MAX_DEVICES: real NICs first, see rank_devices; netsleuth_exporter_devices_omitted counts
the rest), finding id and severity (the catalogue's), and for kernel drops at most
MAX_DROP_SERIES (location, reason, protocol) groups, the rest summed as location="other".
No per-flow or per-address label exists.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from netsleuth.findings.catalogue import CATALOGUE
from netsleuth.host.doctor_rules import judge
from netsleuth.host.rates import d32
from netsleuth.host.sample import Sample, parse_sample
from netsleuth.sources.hostfs import Snapshot

MAX_DEVICES = 64
MAX_DROP_SERIES = 50
SOFTNET = (
    ("processed", "Packets processed by the CPU's NET_RX softirq (softnet_stat col 1)."),
    ("dropped", "Packets dropped: the CPU's input backlog was full (netdev_max_backlog)."),
    ("time_squeeze", "NET_RX runs that ended with work left (budget or time exhausted)."),
    ("received_rps", "Packets steered to this CPU by RPS/RFS (inter-processor interrupts)."),
)
FINDING_IDS = tuple(sorted(f for f in CATALOGUE if f.startswith(("host.", "drops."))))


@dataclass
class Wrapped:
    """64-bit totals of 32-bit kernel counters, advanced by each reading modulo 2**32."""

    last: dict[tuple[str, int], int] = field(default_factory=dict)
    total: dict[tuple[str, int], int] = field(default_factory=dict)

    def update(self, key: tuple[str, int], raw: int) -> int:
        before = self.last.get(key)
        self.total[key] = raw if before is None else self.total[key] + d32(before, raw)
        self.last[key] = raw
        return self.total[key]


@dataclass
class DropTotals:
    """Kernel drops since the exporter started, by bounded (location, reason, protocol)."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, location: str, reason: str, protocol: str, n: int) -> None:
        key = (location, reason, protocol)
        with self.lock:
            if key not in self.counts and len(self.counts) >= MAX_DROP_SERIES - 1:
                key = ("other", "", "")  # once admitted a series stays: counters stay monotone
            self.counts[key] = self.counts.get(key, 0) + n


def rank_devices(s: Sample, root: Path) -> tuple[list[str], int]:
    """The devices to export, at most MAX_DEVICES, and how many were left out. A node with
    hundreds of veth, cali*, br-* or docker* devices must not push its real NIC out of an
    alphabetical cut: devices backed by hardware (/sys/class/net/X/device exists: a bus
    device, PCI or virtio), then those with RX queue or ethtool statistics, then the rest;
    by name within each rank."""
    names = sorted(d for d in set(s.devices) | set(s.ethtool) if d != "lo")

    def rank(dev: str) -> int:
        if os.path.exists(root / "sys/class/net" / dev / "device"):
            return 0
        return 1 if s.queue_packets(dev) or s.ethtool.get(dev) else 2

    ranked = sorted(names, key=lambda d: (rank(d), d))
    return ranked[:MAX_DEVICES], max(0, len(ranked) - MAX_DEVICES)


class HostCollector(Collector):
    def __init__(
        self,
        read: Callable[[], Snapshot],
        drops: DropTotals | None = None,
        root: Path = Path("/"),
    ) -> None:
        self.read = read
        self.drops = drops
        self.root = root  # where sys/class/net/<dev>/device says which devices are NICs
        self.lock = threading.Lock()  # two Prometheus servers may scrape at once
        self.prev: Sample | None = None
        self.wrapped = Wrapped()
        self.seconds = 0.0

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            start = time.perf_counter()
            # Monotonic: rates over the scrape interval must not follow a wall-clock step.
            s = parse_sample(self.read(), time.monotonic())
            metrics = [*self._cpu(s), *self._devices(s), *self._findings(s)]
            self.prev = s
            if self.drops is not None:
                metrics.append(self._drops(self.drops))
            self.seconds = time.perf_counter() - start
        took = GaugeMetricFamily(
            "netsleuth_exporter_collect_seconds", "Time this scrape spent reading the host."
        )
        took.add_metric([], self.seconds)
        yield from metrics
        yield took

    def _cpu(self, s: Sample) -> Iterator[Metric]:
        for col, doc in SOFTNET:
            m = CounterMetricFamily(f"netsleuth_softnet_{col}", doc, labels=["cpu"])
            for cpu, row in sorted(s.softnet.items()):
                raw = getattr(row, col)
                if raw is not None:
                    m.add_metric([str(cpu)], self.wrapped.update((col, cpu), raw))
            yield m
        m = CounterMetricFamily(
            "netsleuth_softirq_net_rx",
            "NET_RX softirqs run on the CPU (/proc/softirqs).",
            labels=["cpu"],
        )
        for cpu, raw in sorted(s.net_rx.items()):
            m.add_metric([str(cpu)], self.wrapped.update(("net_rx", cpu), raw))
        yield m

    def _devices(self, s: Sample) -> Iterator[Metric]:
        devices, omitted = rank_devices(s, self.root)
        left = GaugeMetricFamily(
            "netsleuth_exporter_devices_omitted",
            f"Devices not exported: beyond the first {MAX_DEVICES} (NICs first).",
        )
        left.add_metric([], omitted)
        queues = CounterMetricFamily(
            "netsleuth_nic_queue_rx_packets",
            "Packets received on the NIC's RX queue (ethtool -S).",
            labels=["device", "queue"],
        )
        dropped = CounterMetricFamily(
            "netsleuth_netdev_rx_dropped",
            "Packets the stack dropped for the device (rx_dropped).",
            labels=["device"],
        )
        nohandler = CounterMetricFamily(
            "netsleuth_netdev_rx_nohandler",
            "Packets with no protocol handler (rx_nohandler).",
            labels=["device"],
        )
        for dev in devices:
            for q, v in sorted(s.queue_packets(dev).items()):
                queues.add_metric([dev, str(q)], v)
            stats = s.devices.get(dev, {})
            if "rx_dropped" in stats:
                dropped.add_metric([dev], stats["rx_dropped"])
            if "rx_nohandler" in stats:
                nohandler.add_metric([dev], stats["rx_nohandler"])
        yield from (queues, dropped, nohandler, left)

    def _findings(self, s: Sample) -> Iterator[Metric]:
        """doctor's rules over the interval since the previous scrape (static rules only at
        the first scrape): 1 for a firing finding, 0 for every other catalogued one."""
        pair = [self.prev, s] if self.prev is not None and s.time > self.prev.time else [s]
        firing = {f.id for f in judge(pair)[0]}
        m = GaugeMetricFamily(
            "netsleuth_finding_active",
            "1 while the finding fires over the last scrape interval.",
            labels=["id", "severity"],
        )
        for fid in FINDING_IDS:
            m.add_metric([fid, CATALOGUE[fid].severity.label], 1.0 if fid in firing else 0.0)
        yield m

    @staticmethod
    def _drops(totals: DropTotals) -> Metric:
        m = CounterMetricFamily(
            "netsleuth_kernel_drops",
            "Packets freed by kfree_skb as drops, by location, reason and protocol.",
            labels=["location", "reason", "protocol"],
        )
        with totals.lock:
            for (loc, reason, proto), n in sorted(totals.counts.items()):
                m.add_metric([loc, reason, proto], n)
        return m
