"""Parsers for the receive-path counter files (pure: texts in, numbers out).

Each parser tolerates the layouts of old and new kernels and skips lines it does not
understand rather than failing: a diagnosis from most of the counters beats none."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from netsleuth.sources import cpulist
from netsleuth.sources.cpulist import uint, uints
from netsleuth.sources.interrupts import cpu_header

# --- /proc/net/softnet_stat --------------------------------------------------------------
# One line per online CPU, %08x columns (net/core/net-procfs.c softnet_seq_show):
#  1 processed  2 dropped (backlog full: netdev_max_backlog)  3 time_squeeze (budget or
#  time ran out in net_rx_action)  4-8 always 0 (were fastroute counters)  9 cpu_collision
#  (always 0 now)  10 received_rps (IPIs received to process RPS-steered packets)
#  11 flow_limit_count (3.11+)  12 backlog length (5.10+)  13 CPU id (5.10+)
#  14 input_qlen, 15 process_qlen (6.x). Kernels before 5.10 print no CPU id: lines are then
#  mapped onto the online CPUs in order (offline CPUs print no line).


@dataclass(frozen=True, slots=True)
class Softnet:
    cpu: int
    processed: int
    dropped: int
    time_squeeze: int
    received_rps: int | None
    flow_limit: int | None
    backlog: int | None


def parse_cpu_list(text: str) -> list[int] | None:
    """ "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11]; None when the text is not a CPU list
    (linear and bounded: sources.cpulist)."""
    try:
        return cpulist.parse_cpu_list(text)
    except ValueError:
        return None


def parse_softnet(text: str, online: list[int] | None = None) -> list[Softnet]:
    """One row per line, up to MAX_CPUS lines (one per CPU: no host prints more); each line
    split as it is read, not all at once (a 4 MiB file of short lines split whole held
    ~200 MB)."""
    rows = []
    lines = (cols for cols in map(str.split, text.splitlines()) if cols)
    for i, cols in enumerate(itertools.islice(lines, cpulist.MAX_CPUS)):
        if max(map(len, cols)) > 16:  # %08x of a u32 (16 digits allowed for a u64 some day)
            continue
        try:
            v = [int(c, 16) for c in cols]
        except ValueError:
            continue
        if len(v) < 3:
            continue
        if len(v) >= 13:
            cpu = v[12]
            if cpu >= cpulist.MAX_CPUS:
                continue
        elif online is not None and i < len(online):
            cpu = online[i]
        else:
            cpu = i
        rows.append(
            Softnet(
                cpu,
                v[0],
                v[1],
                v[2],
                v[9] if len(v) >= 10 else None,
                v[10] if len(v) >= 11 else None,
                v[11] if len(v) >= 12 else None,
            )
        )
    return rows


# --- /proc/softirqs ----------------------------------------------------------------------


def parse_softirqs(text: str) -> dict[str, list[int]]:
    """{"NET_RX": [per-CPU counts], ...}; the header names the CPUs in order."""
    out: dict[str, list[int]] = {}
    lines = text.splitlines()
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        vals = uints(rest.split())
        if vals is not None:
            out[name.strip()] = vals
    return out


def softirq_cpus(text: str) -> list[int]:
    head = text.splitlines()[0] if text else ""
    return cpu_header(head)


# --- /proc/net/dev and sys/class/net/*/statistics ----------------------------------------

DEV_RX = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """{"eth0": {"rx_packets": .., "rx_dropped": .., "rx_fifo_errors": .., ...}} named like
    sys/class/net/*/statistics (include/uapi/linux/if_link.h rtnl_link_stats64)."""
    names = {
        "bytes": "rx_bytes",
        "packets": "rx_packets",
        "errs": "rx_errors",
        "drop": "rx_dropped",
        "fifo": "rx_fifo_errors",
        "frame": "rx_frame_errors",
        "compressed": "rx_compressed",
        "multicast": "multicast",
    }
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        dev, sep, rest = line.partition(":")
        if not sep:
            continue
        raw = [uint(x) for x in rest.split()]
        vals = [v for v in raw if v is not None]
        if len(vals) != len(raw) or len(vals) < 8:
            continue
        out[dev.strip()] = {names[k]: v for k, v in zip(DEV_RX, vals[:8], strict=True)}
        if len(vals) >= 16:
            out[dev.strip()].update(tx_packets=vals[9], tx_dropped=vals[11])
    return out


# --- /proc/net/snmp, /proc/net/netstat ---------------------------------------------------


def parse_mib(text: str) -> dict[str, dict[str, int]]:
    """Pairs of "Proto: names..." / "Proto: values..." lines -> {"Ip": {"ReasmFails": 0}}."""
    out: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for head, vals in zip(lines[0::2], lines[1::2], strict=False):
        p1, _, names = head.partition(":")
        p2, _, values = vals.partition(":")
        if p1 != p2:
            continue
        nums = [_signed(x) for x in values.split()]
        if any(v is None for v in nums):
            continue
        out.setdefault(p1.strip(), {}).update(
            (k, v) for k, v in zip(names.split(), nums, strict=False) if v is not None
        )
    return out


def _signed(text: str) -> int | None:
    """Some MIB values are signed: Tcp MaxConn is -1 (net/ipv4/proc.c snmp_seq_show_tcp_udp)."""
    v = uint(text.removeprefix("-"))
    return -v if v is not None and text.startswith("-") else v


# --- ethtool -S / -g texts ---------------------------------------------------------------
# Per-queue RX packet counters of common drivers: ixgbe/virtio (old)/veth rx_queue_N_packets,
# i40e/ice rx-N.packets, mlx5 rxN_packets, ena queue_N_rx_cnt, bnxt "[N]: rx_ucast_packets"
# (bnxt prints per-ring stats with a "[N]: " prefix).
QUEUE_STATS = (
    re.compile(r"^rx_queue_([0-9]{1,6})_packets$"),
    re.compile(r"^rx-([0-9]{1,6})\.packets$"),
    re.compile(r"^rx([0-9]{1,6})_packets$"),
    re.compile(r"^queue_([0-9]{1,6})_rx_cnt$"),
    re.compile(r"^\[([0-9]{1,6})\]: rx_ucast_packets$"),
)


def parse_ethtool_stats(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().rpartition(":")
        if not sep:
            continue
        v = uint(value.strip())
        if v is not None:
            out[name.strip()] = v
    return out


def queue_packets(stats: dict[str, int]) -> dict[int, int]:
    """RX packets per queue from `ethtool -S` counters, or {} if the driver has none."""
    out: dict[int, int] = {}
    for name, v in stats.items():
        for rx in QUEUE_STATS:
            m = rx.match(name)
            if m:
                out[int(m.group(1))] = out.get(int(m.group(1)), 0) + v
                break
    return out


def parse_ring(text: str) -> tuple[int | None, int | None]:
    """(current RX ring size, maximum) from `ethtool -g` text."""
    maximum = current = None
    section = None
    for line in text.splitlines():
        low = line.strip().lower()
        if low.startswith("pre-set maximums"):
            section = "max"
        elif low.startswith("current hardware settings"):
            section = "cur"
        else:
            m = re.match(r"^rx:\s*([0-9]{1,20})$", low)
            if m and section == "max":
                maximum = int(m.group(1))
            elif m and section == "cur":
                current = int(m.group(1))
    return current, maximum


def parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    parts = text.split(maxsplit=1)
    return uint(parts[0]) if parts else None


def parse_rps_mask(text: str) -> list[int]:
    """rps_cpus: a hex mask in 32-bit groups separated by commas, most significant first;
    ValueError if it is not one (sources.cpulist.parse_cpu_mask: linear, bounded)."""
    return cpulist.parse_cpu_mask(text)
