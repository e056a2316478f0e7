"""One reading of a host's receive path, parsed from a snapshot of raw texts (pure)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from netsleuth.host.counters import (
    Softnet,
    parse_cpu_list,
    parse_ethtool_stats,
    parse_int,
    parse_mib,
    parse_net_dev,
    parse_ring,
    parse_rps_mask,
    parse_softirqs,
    parse_softnet,
    queue_packets,
    softirq_cpus,
)
from netsleuth.sources.cpulist import uint
from netsleuth.sources.hostfs import Snapshot
from netsleuth.sources.interrupts import Irq, parse_interrupts

USER_HZ = 100  # /proc/stat ticks (USER_HZ is 100 on every architecture Linux supports)


@dataclass
class Sample:
    time: float
    kernel: str | None = None
    cpus: list[int] = field(default_factory=list)  # online
    softnet: dict[int, Softnet] = field(default_factory=dict)
    net_rx: dict[int, int] = field(default_factory=dict)  # NET_RX softirqs per CPU
    softirq_ticks: dict[int, int] = field(default_factory=dict)  # /proc/stat softirq column
    irqs: list[Irq] = field(default_factory=list)
    irq_cpus: list[int] = field(default_factory=list)  # CPU order of Irq.counts
    affinity: dict[str, list[int]] = field(default_factory=dict)
    devices: dict[str, dict[str, int]] = field(default_factory=dict)
    ethtool: dict[str, dict[str, int]] = field(default_factory=dict)
    rings: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    rps: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    mib: dict[str, dict[str, int]] = field(default_factory=dict)
    sysctl: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def queue_packets(self, dev: str) -> dict[int, int]:
        return queue_packets(self.ethtool.get(dev, {}))

    def rps_enabled(self) -> bool:
        return any(cpus for queues in self.rps.values() for cpus in queues.values())


def _proc_stat_softirq(text: str) -> dict[int, int]:
    """cpuN lines: user nice system idle iowait irq softirq ... (ticks of USER_HZ)."""
    out = {}
    for m in re.finditer(r"^cpu([0-9]{1,4})\s+((?:[0-9]{1,20}\s+){6}[0-9]{1,20})", text, re.M):
        out[int(m.group(1))] = int(m.group(2).split()[6])
    return out


def parse_sample(snap: Snapshot, time: float) -> Sample:
    s = Sample(time=time, notes=list(snap.notes))
    f = snap.files
    if "proc/sys/kernel/osrelease" in f:
        s.kernel = f["proc/sys/kernel/osrelease"].strip()
    _cpu_files(f, s)
    if "proc/interrupts" in f:
        s.irq_cpus, s.irqs = parse_interrupts(f["proc/interrupts"])
    if "proc/net/dev" in f:
        s.devices = parse_net_dev(f["proc/net/dev"])
    for path, text in f.items():
        _per_device_file(path, text, s)
    for name in ("netdev_max_backlog", "netdev_budget", "netdev_budget_usecs"):
        v = parse_int(f.get(f"proc/sys/net/core/{name}"))
        if v is not None:
            s.sysctl[name] = v
    for name in ("proc/net/snmp", "proc/net/netstat"):
        if name in f:
            for proto, vals in parse_mib(f[name]).items():
                s.mib.setdefault(proto, {}).update(vals)
    return s


def _cpu_files(f: dict[str, str], s: Sample) -> None:
    """The online CPUs, softnet_stat, NET_RX softirqs and softirq ticks."""
    online = (
        parse_cpu_list(f["sys/devices/system/cpu/online"])
        if "sys/devices/system/cpu/online" in f
        else None
    )
    if "proc/net/softnet_stat" in f:
        s.softnet = {r.cpu: r for r in parse_softnet(f["proc/net/softnet_stat"], online)}
    if "proc/softirqs" in f:
        text = f["proc/softirqs"]
        rows = parse_softirqs(text)
        if "NET_RX" in rows:
            s.net_rx = dict(zip(softirq_cpus(text), rows["NET_RX"], strict=False))
    if "proc/stat" in f:
        s.softirq_ticks = _proc_stat_softirq(f["proc/stat"])
    s.cpus = online or sorted(set(s.softnet) | set(s.net_rx))


def _per_device_file(path: str, text: str, s: Sample) -> None:
    """One file of a device, a queue or an IRQ line: statistics, RPS masks, IRQ affinity,
    ethtool -S and -g texts; any other path is not this function's."""
    parts = path.split("/")
    if path.startswith("sys/class/net/") and len(parts) == 6 and parts[4] == "statistics":
        v = parse_int(text)
        if v is not None:
            s.devices.setdefault(parts[3], {})[parts[5]] = v
    elif path.startswith("sys/class/net/") and path.endswith("/rps_cpus") and len(parts) == 7:
        q = uint(parts[5].removeprefix("rx-"))
        if q is not None:
            with contextlib.suppress(ValueError):  # an unreadable mask: no RPS reading
                s.rps.setdefault(parts[3], {})[q] = parse_rps_mask(text)
    elif path.startswith("proc/irq/") and path.endswith("/smp_affinity_list"):
        cpus = parse_cpu_list(text)
        if cpus is not None:
            s.affinity[parts[2]] = cpus
    elif path.startswith("ethtool/") and len(parts) == 3:
        if parts[2] == "statistics":
            s.ethtool[parts[1]] = parse_ethtool_stats(text)
        elif parts[2] == "ring":
            s.rings[parts[1]] = parse_ring(text)
