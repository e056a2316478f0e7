"""One reading of a host's receive path, parsed from a snapshot of raw texts (pure)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

from netsleuth.errors import InputError
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

# The values one parsed sample may keep: numbers (counters, per-CPU cells, the CPUs of
# affinity lists and RPS masks) count one each, names (ethtool -S and MIB counters) two more,
# so a unit costs CPython ~40 bytes at most and two samples stay under ~80 MB. Measured: a
# sample of this project's 2-CPU VM keeps 1.1k, the 128-CPU fixture (tests/fixtures/host128)
# 6.3k; a 512-CPU host's 2 MB /proc/interrupts is ~190k cells ("%10u " each), and no real
# /proc/interrupts within MAX_FILE has more than ~380k. Without it, each file within its cap,
# a sample parsed into GBs: 1000 affinity files of "0-8191" (7 bytes each) kept 8 M CPU
# numbers, 360 MB, and 60 samples of 8192-CPU /proc/interrupts 20 MB each.
MAX_VALUES = 1 << 20


class SampleTooLargeError(InputError):
    """A sample would keep more than MAX_VALUES values once parsed: not a host's reading
    (exit 2 from any command; doctor names the bundle or root it came from)."""

    def __init__(self, problem: str) -> None:
        super().__init__("sample", problem)


class _Values:
    def __init__(self) -> None:
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n
        if self.n > MAX_VALUES:
            raise SampleTooLargeError(
                f"a sample holds more than {MAX_VALUES} counters and per-CPU values "
                "(MAX_VALUES): not a host's reading"
            )


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
    """SampleTooLargeError past MAX_VALUES, counted after each file (one file is capped by its
    reader: MAX_FILE)."""
    s = Sample(time=time, notes=list(snap.notes))
    f = snap.files
    kept = _Values()
    if "proc/sys/kernel/osrelease" in f:
        s.kernel = f["proc/sys/kernel/osrelease"].strip()
    _cpu_files(f, s)
    kept.add(len(s.cpus) + 7 * len(s.softnet) + 2 * (len(s.net_rx) + len(s.softirq_ticks)))
    if "proc/interrupts" in f:
        s.irq_cpus, s.irqs = parse_interrupts(f["proc/interrupts"])
        kept.add(len(s.irq_cpus) + len(s.irqs) * (len(s.irq_cpus) + 2))
    if "proc/net/dev" in f:
        s.devices = parse_net_dev(f["proc/net/dev"])
        kept.add(sum(len(row) + 1 for row in s.devices.values()))
    for path, text in f.items():
        kept.add(_per_device_file(path, text, s))
    for name in ("netdev_max_backlog", "netdev_budget", "netdev_budget_usecs"):
        v = parse_int(f.get(f"proc/sys/net/core/{name}"))
        if v is not None:
            s.sysctl[name] = v
    for name in ("proc/net/snmp", "proc/net/netstat"):
        if name in f:
            for proto, vals in parse_mib(f[name]).items():
                s.mib.setdefault(proto, {}).update(vals)
                kept.add(3 * len(vals) + 1)
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


def _per_device_file(path: str, text: str, s: Sample) -> int:
    """One file of a device, a queue or an IRQ line: statistics, RPS masks, IRQ affinity,
    ethtool -S and -g texts; any other path is not this function's. The number of values
    (names and numbers) it kept."""
    parts = path.split("/")
    if path.startswith("sys/class/net/") and len(parts) == 6 and parts[4] == "statistics":
        v = parse_int(text)
        if v is not None:
            s.devices.setdefault(parts[3], {})[parts[5]] = v
            return 3
    elif path.startswith("sys/class/net/") and path.endswith("/rps_cpus") and len(parts) == 7:
        q = uint(parts[5].removeprefix("rx-"))
        if q is not None:
            with contextlib.suppress(ValueError):  # an unreadable mask: no RPS reading
                mask = s.rps.setdefault(parts[3], {})[q] = parse_rps_mask(text)
                return len(mask) + 3
    elif path.startswith("proc/irq/") and path.endswith("/smp_affinity_list"):
        cpus = parse_cpu_list(text)
        if cpus is not None:
            s.affinity[parts[2]] = cpus
            return len(cpus) + 1
    elif path.startswith("ethtool/") and len(parts) == 3:
        if parts[2] == "statistics":
            stats = s.ethtool[parts[1]] = parse_ethtool_stats(text)
            return 3 * len(stats) + 1
        if parts[2] == "ring":
            s.rings[parts[1]] = parse_ring(text)
            return 3
    return 0
