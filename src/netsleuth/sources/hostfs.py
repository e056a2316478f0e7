"""Read the receive-path counters of a host, as raw texts keyed by their path under a root.

A snapshot is {relative path: file text}. The same mapping comes from the live host
(root "/"), from a chroot or copied tree (--root), and from a bundle's samples/N directory,
so every parser downstream is pure and sees the same thing in all three cases. Absent or
unreadable files are skipped with a note: old kernels lack some, containers hide others.

Paths (all relative to the root):
  proc/net/softnet_stat proc/softirqs proc/interrupts proc/stat proc/net/dev
  proc/net/snmp proc/net/netstat proc/sys/kernel/osrelease sys/devices/system/cpu/online
  proc/sys/net/core/{netdev_max_backlog,netdev_budget,netdev_budget_usecs}
  sys/class/net/<dev>/statistics/<counter>  sys/class/net/<dev>/queues/rx-<n>/rps_cpus
  proc/irq/<n>/smp_affinity_list
  ethtool/<dev>/statistics (`ethtool -S` text) and ethtool/<dev>/ring (`ethtool -g` text):
  not files on a host; filled from SIOCETHTOOL by sources.ethtool when live.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from netsleuth.sources.interrupts import queue_irqs
from netsleuth.sources.safefile import read_capped

FIXED = (
    "proc/net/softnet_stat",
    "proc/softirqs",
    "proc/interrupts",
    "proc/stat",
    "proc/net/dev",
    "proc/net/snmp",
    "proc/net/netstat",
    "proc/sys/kernel/osrelease",
    "sys/devices/system/cpu/online",
    "proc/sys/net/core/netdev_max_backlog",
    "proc/sys/net/core/netdev_budget",
    "proc/sys/net/core/netdev_budget_usecs",
)
MAX_FILE = 4 << 20  # /proc/interrupts on a 512-CPU host is ~2 MB
# Bounds on what a --root tree can make us read (a busy container host has a few thousand
# veths; no NIC has more than a few hundred RX queues): files read stay under ~100k.
MAX_DEVICES = 8192
MAX_QUEUES = 1024


@dataclass
class Snapshot:
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def get(self, path: str) -> str | None:
        return self.files.get(path)


def _slurp(path: str) -> bytes:
    """Up to MAX_FILE bytes of a regular file (sources.safefile: no FIFO, device or
    last-component symlink; never blocks): a --root or bundle tree is untrusted input."""
    return read_capped(path, MAX_FILE)


def _read(root: str, rel: str, snap: Snapshot, *, quiet: bool = False) -> None:
    try:
        data = _slurp(os.path.join(root, rel))
    except FileNotFoundError:
        if not quiet:
            snap.notes.append(f"{rel}: absent, skipped")
        return
    except PermissionError:
        snap.notes.append(f"{rel}: not permitted, skipped (run as root)")
        return
    except OSError as err:
        if not quiet:
            snap.notes.append(f"{rel}: {err.strerror}, skipped")
        return
    snap.files[rel] = data.decode("utf-8", "replace")


def _listdir(path: str, limit: int = 1 << 16) -> list[str]:
    """Up to `limit` names, sorted: a --root directory of millions of entries is read no
    further (os.listdir would hold them all)."""
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in itertools.islice(it, limit))
    except OSError:
        return []


# The device counters the rules read (sys/class/net/<dev>/statistics has ~24).
DEVICE_COUNTERS = (
    "rx_packets",
    "rx_bytes",
    "rx_errors",
    "rx_dropped",
    "rx_nohandler",
    "rx_missed_errors",
    "rx_fifo_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_length_errors",
    "tx_packets",
    "tx_dropped",
)


def read_snapshot(root: Path) -> Snapshot:
    snap = Snapshot()
    r = str(root)
    for rel in FIXED:
        _read(r, rel, snap)
    net = os.path.join(r, "sys/class/net")
    for dev in _listdir(net, MAX_DEVICES):
        for counter in DEVICE_COUNTERS:
            _read(r, f"sys/class/net/{dev}/statistics/{counter}", snap, quiet=True)
        for q in _listdir(os.path.join(net, dev, "queues"), MAX_QUEUES):
            if q.startswith("rx-"):
                _read(r, f"sys/class/net/{dev}/queues/{q}/rps_cpus", snap, quiet=True)
    # Affinity of the NIC queue IRQs only: the rest (timers, disks) is not ours to judge.
    for irq in queue_irqs(snap.get("proc/interrupts") or ""):
        # The IRQ name comes from the file: only a number names a proc/irq directory.
        if irq.isascii() and irq.isdigit():
            _read(r, f"proc/irq/{irq}/smp_affinity_list", snap, quiet=True)
    # A bundle or a copied tree may carry ethtool texts already.
    for dev in _listdir(os.path.join(r, "ethtool"), MAX_DEVICES):
        for name in ("statistics", "ring"):
            _read(r, f"ethtool/{dev}/{name}", snap, quiet=True)
    return snap


def read_live(root: Path = Path("/")) -> Snapshot:
    """A snapshot of this host, NIC counters from SIOCETHTOOL included (`ethtool -S`/`-g`
    texts), so a live reading and a bundle look the same downstream."""
    from netsleuth.sources.ethtool import ethtool_texts

    snap = read_snapshot(root)
    devices = sorted(
        {p.split("/")[3] for p in snap.files if p.startswith("sys/class/net/")} - {"lo"}
    )
    files, notes = ethtool_texts(devices)
    snap.files.update(files)
    snap.notes += notes
    return snap
