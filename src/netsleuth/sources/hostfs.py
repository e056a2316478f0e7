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

import re
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Snapshot:
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def get(self, path: str) -> str | None:
        return self.files.get(path)

    def devices(self) -> list[str]:
        found = set()
        for p in self.files:
            m = re.match(r"(?:sys/class/net|ethtool)/([^/]+)/", p)
            if m:
                found.add(m.group(1))
        return sorted(found)


def _slurp(path: Path) -> bytes:
    """Up to MAX_FILE bytes in 64 KiB reads: /proc/sys handlers allocate the whole requested
    count and fail with ENOMEM on a 4 MiB read."""
    chunks = []
    size = 0
    with open(path, "rb", buffering=0) as fh:
        while size < MAX_FILE:
            chunk = fh.read(min(65536, MAX_FILE - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def _read(root: Path, rel: str, snap: Snapshot, *, quiet: bool = False) -> None:
    path = root / rel
    try:
        data = _slurp(path)
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


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.iterdir())
    except OSError:
        return []


def read_snapshot(root: Path) -> Snapshot:
    snap = Snapshot()
    for rel in FIXED:
        _read(root, rel, snap)
    net = root / "sys" / "class" / "net"
    for dev in _listdir(net):
        for counter in _listdir(net / dev / "statistics"):
            _read(root, f"sys/class/net/{dev}/statistics/{counter}", snap, quiet=True)
        for q in _listdir(net / dev / "queues"):
            if q.startswith("rx-"):
                _read(root, f"sys/class/net/{dev}/queues/{q}/rps_cpus", snap, quiet=True)
    interrupts = snap.get("proc/interrupts") or ""
    for m in re.finditer(r"^\s*(\d+):", interrupts, re.M):
        _read(root, f"proc/irq/{m.group(1)}/smp_affinity_list", snap, quiet=True)
    # A bundle or a copied tree may carry ethtool texts already.
    for dev in _listdir(root / "ethtool"):
        for name in ("statistics", "ring"):
            _read(root, f"ethtool/{dev}/{name}", snap, quiet=True)
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
