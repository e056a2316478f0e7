"""The /proc/interrupts format: each IRQ's per-CPU counts and, for NIC queue IRQs, the
device and queue its action name says (pure: text in, records out).

In sources because the reader needs it: a snapshot holds the smp_affinity_list of the
queue IRQs only (hostfs.read_snapshot), so reading must know which IRQs are queues. The
host layer parses the same text into its Sample (host/sample.py) from here, so the imports
run one way: sources -> host (tests/test_layers.py)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from netsleuth.sources import cpulist
from netsleuth.sources.cpulist import all_uint, uint


def cpu_header(head: str) -> list[int]:
    """The CPU numbers of a /proc/softirqs or /proc/interrupts header ("CPU0 CPU1 ...")."""
    found = (uint(m, cpulist.MAX_CPUS) for m in re.findall(r"CPU([0-9]{1,5})\b", head))
    return [c for c in found if c is not None]


# --- /proc/interrupts --------------------------------------------------------------------
# "NN:  c0 c1 ... cN  <chip> [hwirq] [type]  <action names>"; the layout of the chip and type
# columns changed over the years (3.10 "IR-PCI-MSI-edge eth0-TxRx-0", 4.x+ "IR-PCI-MSI
# 524289-edge eth0-TxRx-0", 6.x "PCI-MSIX-0000:00:01.0 3-edge virtio0-input.0"): the CPU
# columns are counted from the header and the action is the last field.

# Queue IRQ names of common drivers (the `dev` group is what the IRQ name says: a netdev
# name, a virtio device, or a PCI address for mlx5): i40e/ice/igb/ixgbe "i40e-eth0-TxRx-3"
# or "eth0-TxRx-3", many drivers "eth0-rx-3" / "eth0-combined-3", mlx5 "mlx5_comp3@pci:...",
# virtio_net "virtio3-input.0", ena "eth0-Tx-Rx-3".
QUEUE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^(?:i40e|ice|iavf|igb|igc|ixgbe)-(?P<dev>[\w.@-]+?)-TxRx-(?P<q>[0-9]{1,6})$"),
    re.compile(r"^(?P<dev>[\w.@-]+?)-TxRx-(?P<q>[0-9]{1,6})$"),
    re.compile(r"^(?P<dev>[\w.-]+?)-Tx-Rx-(?P<q>[0-9]{1,6})$"),
    re.compile(r"^(?P<dev>[\w.@-]+?)-(?:rx|rxtx|combined|fp|ch)-(?P<q>[0-9]{1,6})$"),
    re.compile(r"^mlx5_comp(?P<q>[0-9]{1,6})@(?P<dev>pci:[\w:.]+)$"),
    re.compile(r"^(?P<dev>virtio[0-9]+)-input\.(?P<q>[0-9]{1,6})$"),
)


@dataclass(frozen=True, slots=True)
class Irq:
    irq: str
    name: str
    counts: tuple[int, ...]  # per CPU, in the header's CPU order
    device: str | None = None  # as named in the IRQ (eth0, virtio1, pci:0000:...)
    queue: int | None = None


def queue_of(name: str) -> tuple[str, int] | None:
    for rx in QUEUE_PATTERNS:
        m = rx.match(name)
        if m:
            return m.group("dev"), int(m.group("q"))
    return None


def parse_interrupts(text: str) -> tuple[list[int], list[Irq]]:
    cpus, rows = _rows(text)
    out = []
    for irq, counts, name in rows:
        q = queue_of(name)
        out.append(Irq(irq, name, tuple(map(int, counts)), *(q if q else (None, None))))
    return list(cpus), out  # a copy: _rows' lists stay the cache's


def queue_irqs(text: str) -> list[str]:
    """The IRQs parse_interrupts names as NIC queues, their counts left as text (the
    snapshot reader needs only which smp_affinity_list files to read)."""
    return [irq for irq, _, name in _rows(text)[1] if queue_of(name)]


@functools.lru_cache(maxsize=1)
def _rows(text: str) -> tuple[list[int], list[tuple[str, list[str], str]]]:
    """The CPUs of the header, and each IRQ line with one count a CPU: (irq, counts as
    text, action name). Other lines (ERR:, MIS: one count for all CPUs; cut or garbled
    ones) are left out. The last text's rows are kept: a scrape or a sample reads the same
    file twice, for the queue IRQs' affinity files (hostfs.read_snapshot) and for the
    counts (host/sample.py); its callers build new lists from them, never change them."""
    lines = text.splitlines()
    if not lines:
        return [], []
    cpus = cpu_header(lines[0])
    n = len(cpus)
    rows = []
    for line in lines[1:]:
        irq, sep, rest = line.partition(":")
        if not sep:
            continue
        fields = rest.split()
        counts = fields[:n]
        if len(counts) != n or not all_uint(counts):
            continue
        rows.append((irq.strip(), counts, fields[-1] if len(fields) > n else ""))
    return cpus, rows
