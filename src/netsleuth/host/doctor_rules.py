"""host.* findings from samples of the receive path (pure).

The order follows the path a packet takes, which is also the order an engineer reads the
counters in (incidents 2 and 3): NIC (missed/fifo/over, ring size) -> IRQ and queue spread
-> NET_RX softirq per CPU -> softnet backlog, budget and RPS -> protocol handlers
(rx_nohandler, rx_dropped) -> IP reassembly -> TCP listen queues.

Thresholds (also in docs/findings.md). A rate rule needs a counter to move between the first
and the last sample; a healthy busy host (millions of packets, spread evenly, no drops)
triggers none of them:
  imbalance: max/mean >= 2 over the queues or CPUs, with >= 1000 events/s in total
  softirq hotspot: a CPU >= 50% in softirq and >= 2x the mean, or NET_RX >= 2x the mean
    with >= 10000 NET_RX/s in total
  squeeze: >= 10 time_squeeze/s on a CPU
  ring small: RX ring below half its maximum and <= 1024 descriptors
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from netsleuth.findings import Finding, Severity
from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.host.rates import Rates, rates
from netsleuth.host.sample import Sample

IMBALANCE = 2.0
MIN_RATE = 1000.0
HOT_SOFTIRQ_PCT = 50.0
HOT_NET_RX = 10000.0
SQUEEZE = 10.0
NIC_DROP_COUNTERS = ("rx_missed_errors", "rx_fifo_errors", "rx_over_errors")
NIC_ERRORS = (*NIC_DROP_COUNTERS, "rx_crc_errors", "rx_frame_errors", "rx_length_errors")


def _f(fid: str, count: int, summary: str, nxt: str, **evidence: Any) -> Finding:
    evidence["next"] = nxt
    return catalogue_finding(fid, count, summary=summary, evidence=evidence)


def _skew(values: dict[int, float]) -> tuple[float, int, float]:
    """(max/mean, the busiest key, total) over the entries."""
    if not values:
        return 0.0, -1, 0.0
    total = sum(values.values())
    mean = total / len(values)
    top = max(values, key=lambda k: values[k])
    return (values[top] / mean if mean > 0 else 0.0), top, total


def _round(d: dict[int, float]) -> dict[str, float]:
    return {str(k): round(v, 1) for k, v in sorted(d.items())}


def nic(r: Rates, last: Sample) -> list[Finding]:
    out = []
    for dev, row in sorted(r.devices.items()):
        moved = {k: row[k] for k in NIC_DROP_COUNTERS if row.get(k, 0) > 0}
        if moved:
            total = sum(moved.values()) * r.seconds
            ring = last.rings.get(dev)
            out.append(
                _f(
                    "host.nic_drop",
                    round(total),
                    f"{dev}: the NIC dropped {sum(moved.values()):,.1f}/s before the kernel "
                    f"saw them ({', '.join(f'{k} {v:,.1f}/s' for k, v in moved.items())})",
                    f"ethtool -G {dev} rx <max> (ring {ring[0]} of {ring[1]})"
                    if ring and ring[0] and ring[1] and ring[0] < ring[1]
                    else f"ethtool -S {dev}; check the CPU of its queue IRQs (netsleuth watch)",
                    device=dev,
                    per_second={k: round(v, 2) for k, v in moved.items()},
                    ring=list(ring) if ring else None,
                )
            )
    return out


def stack(r: Rates, last: Sample) -> list[Finding]:
    out = []
    for dev, row in sorted(r.devices.items()):
        nohandler = row.get("rx_nohandler", 0.0)
        if nohandler > 0:
            out.append(
                _f(
                    "host.nohandler",
                    round(nohandler * r.seconds),
                    f"{dev}: {nohandler:,.2f} frames/s arrive for a protocol no handler is "
                    f"registered for (rx_nohandler)",
                    "netsleuth drops --filter reason=UNHANDLED_PROTO (or --filter "
                    "protocol=802.2 for spanning-tree BPDUs)",
                    device=dev,
                    per_second=round(nohandler, 3),
                )
            )
        dropped = row.get("rx_dropped", 0.0)
        nic_moving = any(row.get(k, 0) > 0 for k in NIC_ERRORS)
        if dropped > 0 and not nic_moving:
            out.append(
                _f(
                    "host.stack_drop",
                    round(dropped * r.seconds),
                    f"{dev}: rx_dropped rises {dropped:,.2f}/s while every NIC error counter "
                    f"is flat: the kernel, not the NIC, drops them (frames no protocol "
                    f"handler takes count here)",
                    "netsleuth drops (reason UNHANDLED_PROTO names the protocols)",
                    device=dev,
                    per_second=round(dropped, 3),
                )
            )
    return out


def softnet(r: Rates, last: Sample) -> list[Finding]:
    out = []
    drops = {c: v["dropped"] for c, v in r.softnet.items() if v["dropped"] > 0}
    if drops:
        backlog = last.sysctl.get("netdev_max_backlog")
        out.append(
            _f(
                "host.softnet_backlog_drop",
                round(sum(drops.values()) * r.seconds),
                f"per-CPU backlog full: {sum(drops.values()):,.1f} drops/s on CPU "
                f"{', '.join(map(str, sorted(drops)))} (net.core.netdev_max_backlog = "
                f"{backlog})",
                f"sysctl -w net.core.netdev_max_backlog={max(2 * (backlog or 1000), 2000)}; "
                "spread the load (RPS/RSS)",
                per_cpu=_round(drops),
                netdev_max_backlog=backlog,
            )
        )
    squeeze = {c: v["time_squeeze"] for c, v in r.softnet.items() if v["time_squeeze"] >= SQUEEZE}
    if squeeze:
        budget = last.sysctl.get("netdev_budget")
        usecs = last.sysctl.get("netdev_budget_usecs")
        out.append(
            _f(
                "host.softnet_squeeze",
                round(sum(squeeze.values()) * r.seconds),
                f"net_rx_action ran out of budget {sum(squeeze.values()):,.1f} times/s on CPU "
                f"{', '.join(map(str, sorted(squeeze)))} (netdev_budget = {budget}, "
                f"netdev_budget_usecs = {usecs})",
                f"sysctl -w net.core.netdev_budget={2 * (budget or 300)}",
                per_cpu=_round(squeeze),
                netdev_budget=budget,
                netdev_budget_usecs=usecs,
            )
        )
    return out


def cpus(r: Rates, last: Sample) -> list[Finding]:
    out = []
    if len(r.softirq_pct) >= 2 or len(r.net_rx) >= 2:
        pct_skew, pct_top, _ = _skew(r.softirq_pct)
        rx_skew, rx_top, rx_total = _skew(r.net_rx)
        hot_pct = r.softirq_pct.get(pct_top, 0.0) >= HOT_SOFTIRQ_PCT and pct_skew >= IMBALANCE
        hot_rx = rx_total >= HOT_NET_RX and rx_skew >= IMBALANCE
        if hot_pct or hot_rx:
            top = pct_top if hot_pct else rx_top
            out.append(
                _f(
                    "host.softirq_hotspot",
                    round(rx_total * r.seconds),
                    f"receive softirq concentrated on CPU {top}: "
                    f"{r.softirq_pct.get(top, 0.0):.0f}% of that CPU in softirq, NET_RX "
                    f"{r.net_rx.get(top, 0.0):,.0f}/s ({rx_skew:.1f}x the mean)",
                    "netsleuth watch; then per-queue counts (ethtool -S) and `netsleuth "
                    "steer` on a capture of the traffic",
                    cpu=top,
                    softirq_pct=_round(r.softirq_pct),
                    net_rx_per_second=_round(r.net_rx),
                )
            )
    rps = {c: v["received_rps"] for c, v in r.softnet.items() if "received_rps" in v}
    skew, top, total = _skew(rps)
    if last.rps_enabled() and total >= MIN_RATE and skew >= IMBALANCE:
        out.append(
            _f(
                "host.rps_imbalance",
                round(total * r.seconds),
                f"RPS sends {rps[top]:,.0f}/s to CPU {top}, {skew:.1f}x the mean: few flow "
                f"keys (tunnels the flow dissector does not enter, or one big flow)",
                "netsleuth steer --rps-cpus LIST on a capture of the traffic",
                per_cpu=_round(rps),
            )
        )
    return out


def queues(r: Rates, last: Sample) -> list[Finding]:
    out = []
    for dev, q in sorted(r.queues.items()):
        skew, top, total = _skew(q)
        if len(q) >= 2 and total >= MIN_RATE and skew >= IMBALANCE:
            out.append(
                _f(
                    "host.rss_queue_imbalance",
                    round(total * r.seconds),
                    f"{dev}: RX queue {top} takes {q[top]:,.0f} packets/s, {skew:.1f}x the "
                    f"mean of {len(q)} queues",
                    "netsleuth steer on a capture: tunnels hashed on the outer header, or "
                    f"one elephant flow (ethtool -n {dev} rx-flow-hash udp4)",
                    device=dev,
                    per_queue=_round(q),
                )
            )
    return out


def protocols(r: Rates, last: Sample) -> list[Finding]:
    out = []
    overflow = r.deltas.get("TcpExt.ListenOverflows", 0) + r.deltas.get("TcpExt.ListenDrops", 0)
    if overflow > 0:
        out.append(
            _f(
                "host.listen_overflow",
                overflow,
                f"TCP listen queues overflowed: ListenOverflows +"
                f"{r.deltas.get('TcpExt.ListenOverflows', 0)}, ListenDrops +"
                f"{r.deltas.get('TcpExt.ListenDrops', 0)} in {r.seconds:.1f} s",
                "ss -lnt (Recv-Q vs Send-Q per listener); raise the listen() backlog and "
                "net.core.somaxconn, or accept faster",
                listen_overflows=r.deltas.get("TcpExt.ListenOverflows", 0),
                listen_drops=r.deltas.get("TcpExt.ListenDrops", 0),
            )
        )
    fails = r.deltas.get("Ip.ReasmFails", 0)
    if fails > 0:
        out.append(
            _f(
                "host.reassembly_failures",
                fails,
                f"IPv4 reassembly failed {fails} times in {r.seconds:.1f} s (ReasmTimeout +"
                f"{r.deltas.get('Ip.ReasmTimeout', 0)}, ReasmReqds +"
                f"{r.deltas.get('Ip.ReasmReqds', 0)})",
                "netsleuth drops --filter reason=FRAG_REASM_TIMEOUT; capture fragments and "
                "run netsleuth scan (fragment audit)",
                reasm_fails=fails,
                reasm_timeout=r.deltas.get("Ip.ReasmTimeout", 0),
            )
        )
    return out


RATE_RULES = (nic, queues, cpus, softnet, stack, protocols)


def rate_findings(r: Rates, last: Sample) -> list[Finding]:
    """Every rate rule over one pair of samples (doctor: first vs last; watch: each second)."""
    return [f for rule in RATE_RULES for f in rule(r, last)]


# Static rules: one sample is enough (--root, or the last live sample).


def irq_balance(s: Sample) -> list[Finding]:
    out = []
    by_dev: dict[str, list[tuple[str, int]]] = {}
    for irq in s.irqs:
        if irq.device is None or irq.queue is None:
            continue
        if sum(irq.counts) > 0:
            cpu = s.irq_cpus[irq.counts.index(max(irq.counts))]  # the first busiest
        else:
            aff = s.affinity.get(irq.irq) or [-1]
            cpu = aff[0]
        by_dev.setdefault(irq.device, []).append((irq.irq, cpu))
    ncpus = len(s.cpus) or len(s.irq_cpus)
    for dev, irqs in sorted(by_dev.items()):
        used = {c for _, c in irqs}
        want = min(len(irqs), ncpus)
        if len(irqs) >= 2 and want >= 2 and len(used) * 2 <= want:
            out.append(
                _f(
                    "host.irq_imbalance",
                    len(irqs),
                    f"{dev}: {len(irqs)} queue IRQs are served by {len(used)} CPU(s) "
                    f"({', '.join(map(str, sorted(used)))}) of {ncpus}",
                    "spread them: irqbalance, or write CPU lists to "
                    "/proc/irq/N/smp_affinity_list (one queue per CPU)",
                    device=dev,
                    irq_cpu={irq: cpu for irq, cpu in irqs},
                )
            )
    return out


def rings(s: Sample, moving_nic_drop: set[str]) -> list[Finding]:
    out = []
    for dev, (cur, mx) in sorted(s.rings.items()):
        if cur and mx and cur * 2 <= mx and cur <= 1024:
            f = _f(
                "host.ring_small",
                cur,
                f"{dev}: RX ring {cur} descriptors of a possible {mx}",
                f"ethtool -G {dev} rx {mx}",
                device=dev,
                rx=cur,
                rx_max=mx,
            )
            if dev in moving_nic_drop:
                f = replace(f, severity=Severity.WARNING)
            out.append(f)
    return out


def judge(samples: list[Sample]) -> tuple[list[Finding], Rates | None]:
    """Findings from a series of samples (first vs last for rates) or from one."""
    if not samples:
        return [], None
    last = samples[-1]
    findings: list[Finding] = []
    r = None
    if len(samples) >= 2:
        r = rates(samples[0], last)
        findings += rate_findings(r, last)
    nic_dropping = {str(f.evidence["device"]) for f in findings if f.id == "host.nic_drop"}
    findings += irq_balance(last)
    findings += rings(last, nic_dropping)
    return findings, r
