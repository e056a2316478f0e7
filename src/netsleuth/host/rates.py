"""Per-second rates between two samples, wrap-safe.

softnet_stat columns are u32 in the kernel (struct softnet_data: unsigned int processed,
time_squeeze, dropped, received_rps) and wrap every 4.3 G events; a busy CPU wraps
`processed` in hours. Deltas of those are taken modulo 2**32. Device and MIB counters are
64-bit (rtnl_link_stats64, snmp u64 on 64-bit hosts): a decrease there is a reset (driver
reload, device re-created), and the delta is unknown rather than negative."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from netsleuth.host.sample import USER_HZ, Sample

K = TypeVar("K")

U32 = 1 << 32


def d32(a: int, b: int) -> int:
    return (b - a) % U32


def d64(a: int | None, b: int | None) -> int | None:
    if a is None or b is None or b < a:
        return None
    return b - a


@dataclass
class Rates:
    seconds: float
    softnet: dict[int, dict[str, float]] = field(default_factory=dict)  # cpu -> column -> /s
    net_rx: dict[int, float] = field(default_factory=dict)
    softirq_pct: dict[int, float] = field(default_factory=dict)  # % of one CPU in softirq
    devices: dict[str, dict[str, float]] = field(default_factory=dict)
    queues: dict[str, dict[int, float]] = field(default_factory=dict)  # dev -> queue -> pkt/s
    irqs: dict[str, dict[int, float]] = field(default_factory=dict)  # irq -> cpu -> /s
    mib: dict[str, float] = field(default_factory=dict)  # "TcpExt.ListenOverflows" -> /s
    deltas: dict[str, int] = field(default_factory=dict)  # the same MIB counters, raw

    def cpus(self) -> list[int]:
        """CPUs with a softnet or NET_RX rate, in order."""
        return sorted(set(self.softnet) | set(self.net_rx))


def rates(a: Sample, b: Sample) -> Rates:
    dt = b.time - a.time
    if dt <= 0:
        raise ValueError("samples must be in time order and apart")
    r = Rates(dt)
    _cpu_rates(a, b, r)
    _device_rates(a, b, r)
    _irq_rates(a, b, r)
    for proto, vals in b.mib.items():
        for k, v in vals.items():
            d = d64(a.mib.get(proto, {}).get(k), v)
            if d is not None:
                r.deltas[f"{proto}.{k}"] = d
                r.mib[f"{proto}.{k}"] = d / dt
    return r


def _cpu_rates(a: Sample, b: Sample, r: Rates) -> None:
    """softnet_stat columns, NET_RX softirqs and softirq time, per CPU."""
    dt = r.seconds
    for cpu, sb in b.softnet.items():
        sa = a.softnet.get(cpu)
        if sa is None:
            continue
        row = {
            "processed": d32(sa.processed, sb.processed) / dt,
            "dropped": d32(sa.dropped, sb.dropped) / dt,
            "time_squeeze": d32(sa.time_squeeze, sb.time_squeeze) / dt,
        }
        if sa.received_rps is not None and sb.received_rps is not None:
            row["received_rps"] = d32(sa.received_rps, sb.received_rps) / dt
        if sa.flow_limit is not None and sb.flow_limit is not None:
            row["flow_limit"] = d32(sa.flow_limit, sb.flow_limit) / dt
        r.softnet[cpu] = row
    for cpu, v in b.net_rx.items():
        if cpu in a.net_rx:
            r.net_rx[cpu] = d32(a.net_rx[cpu], v) / dt
    for cpu, v in b.softirq_ticks.items():
        d = d64(a.softirq_ticks.get(cpu), v)
        if d is not None:
            r.softirq_pct[cpu] = 100.0 * d / USER_HZ / dt


def _per_second(before: Mapping[K, int], after: Mapping[K, int], dt: float) -> dict[K, float]:
    """Each 64-bit counter of `after` that has a reading in `before`, per second."""
    out: dict[K, float] = {}
    for k, v in after.items():
        d = d64(before.get(k), v)
        if d is not None:
            out[k] = d / dt
    return out


def _device_rates(a: Sample, b: Sample, r: Rates) -> None:
    """Device statistics, and the per-queue packet counters of ethtool -S."""
    for dev, stats in b.devices.items():
        r.devices[dev] = _per_second(a.devices.get(dev, {}), stats, r.seconds)
    for dev in b.ethtool:
        qrow = _per_second(a.queue_packets(dev), b.queue_packets(dev), r.seconds)
        if qrow:
            r.queues[dev] = qrow


def _irq_rates(a: Sample, b: Sample, r: Rates) -> None:
    """Interrupts per CPU of each IRQ line present, with the same name, in both samples
    (only when the CPU columns of /proc/interrupts did not change)."""
    if a.irq_cpus != b.irq_cpus:
        return
    before_irq = {i.irq: i for i in a.irqs}
    for irq in b.irqs:
        old = before_irq.get(irq.irq)
        if old is None or old.name != irq.name:
            continue
        # d32 written out: a 128-CPU host has ~5,000 of these a sample.
        r.irqs[irq.irq] = {
            cpu: ((y - x) % U32) / r.seconds
            for cpu, x, y in zip(b.irq_cpus, old.counts, irq.counts, strict=True)
        }
