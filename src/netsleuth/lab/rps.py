"""`netsleuth lab incident stgw-rps`: RPS on every CPU of the receiver, many inner flows
inside encapsulations this kernel's flow dissector enters (GRE v0; PPTP, i.e. GRE v1,
since Linux 4.10) and one it does not (GRE with the routing bit: __skb_flow_dissect_gre
stops at it, net/core/flow_dissector.c), each phase sent as one burst.

Measured exactly: netif_receive_skb filtered in the kernel to the receiver's device runs on
the CPU RPS chose (get_rps_cpu -> enqueue_to_backlog on that CPU), so each CPU's ring holds
the frames that CPU processed, whatever else the host is doing. Beside it the host-wide
softnet_stat processed / received_rps deltas (other traffic on the host moves them too) and
`steer`'s prediction for the same frames with this kernel's version and the same CPUs.
The kernel hashes with a per-boot random seed (hashrnd), so the model cannot say which CPU
a flow lands on, only how the flows spread: CPUs used, max/mean and distinct hash keys.
"""

from __future__ import annotations

import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents as inc
from netsleuth.craft.l2 import ether
from netsleuth.craft.l3 import ipv4
from netsleuth.craft.tunnel import gre
from netsleuth.host.counters import parse_cpu_list, parse_softnet
from netsleuth.lab.frames import Needs, prepare
from netsleuth.lab.replay import Options, setup_receiver
from netsleuth.lab.sandbox import Sandbox, signals_unwind
from netsleuth.lab.trace import Tracer
from netsleuth.sources.tracefs import tracefs_session

FLOWS = 256
SETTLE = 2.0  # seconds for a burst to be processed on every CPU

PRODUCTION = (
    "STGW: GRE version 1 (PPTP) traffic with few outer addresses; kernels before 4.10 "
    "hashed only the outer header for RPS, so received_rps was skewed ~100x and a few "
    "cores were pegged by softirq while the others idled."
)


def _routing_bit(flows: int) -> list[bytes]:
    """Incident 3's inner flows over GRE with the routing bit set (RFC 1701): a flow
    dissector does not look inside, so every flow hashes on the one outer pair."""
    out = []
    for _, frame in inc.incident3_gre_v0(flows):
        inner = frame[14 + 20 + 4 :]
        g = gre(inner, 0x0800, routing=True)
        out.append(ether(ipv4("203.0.113.1", "198.51.100.1", g, 47), 0x0800))
    return out


def phases(flows: int = FLOWS) -> list[tuple[str, list[bytes]]]:
    return [
        ("GRE v0", [f for _, f in inc.incident3_gre_v0(flows)]),
        ("PPTP (GRE v1)", [f for _, f in inc.incident3_pptp(flows, 1)]),
        ("GRE, routing bit", _routing_bit(flows)),
    ]


@dataclass
class Phase:
    name: str
    frames: int
    measured: dict[int, int] = field(default_factory=dict)  # CPU -> frames it processed
    processed: dict[int, int] = field(default_factory=dict)  # softnet_stat deltas, host-wide
    received_rps: dict[int, int] = field(default_factory=dict)
    predicted: dict[int, int] = field(default_factory=dict)  # steer's model
    predicted_keys: int = 0

    @staticmethod
    def spread(d: dict[int, int]) -> float:
        """max/mean over the CPUs: 1.0 is even, len(cpus) is all on one."""
        total = sum(d.values())
        return max(d.values()) * len(d) / total if total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "frames": self.frames,
            "measured": {str(k): v for k, v in self.measured.items()},
            "measured_max_over_mean": round(self.spread(self.measured), 2),
            "softnet_processed": {str(k): v for k, v in self.processed.items()},
            "softnet_received_rps": {str(k): v for k, v in self.received_rps.items()},
            "predicted": {str(k): v for k, v in self.predicted.items()},
            "predicted_max_over_mean": round(self.spread(self.predicted), 2),
            "predicted_hash_keys": self.predicted_keys,
        }


@dataclass
class RpsReport:
    cpus: list[int]
    phases: list[Phase]
    notes: list[str]
    kernel: str

    def to_json(self) -> dict[str, Any]:
        return {
            "incident": "stgw-rps",
            "production": PRODUCTION,
            "kernel": self.kernel,
            "rps_cpus": self.cpus,
            "phases": [p.to_json() for p in self.phases],
            "notes": self.notes,
        }


def _softnet() -> dict[int, tuple[int, int]]:
    rows = parse_softnet(Path("/proc/net/softnet_stat").read_text())
    return {r.cpu: (r.processed, r.received_rps or 0) for r in rows}


def _mask(cpus: list[int]) -> str:
    return f"{sum(1 << c for c in cpus):x}"


def _kernel_version() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", platform.release())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def predict(frames: list[bytes], cpus: list[int]) -> tuple[dict[int, int], int]:
    """steer's RPS model over the frames (written to a temporary pcap, removed after)."""
    from netsleuth.steering.model import NicModel, RpsModel
    from netsleuth.steering.run import steer

    with tempfile.TemporaryDirectory(prefix="netsleuth-lab-") as d:
        path = Path(d) / "phase.pcap"
        with path.open("wb") as fh:
            write_pcap(fh, [(i, f) for i, f in enumerate(frames)])
        res = steer([str(path)], NicModel(queues=1), RpsModel(_kernel_version(), tuple(cpus)))
    assert res.cpus is not None, "an RPS model was given"
    return {c: int(res.cpus.packets[c]) for c in cpus}, res.rps_keys


def _measure(sock: Any, tracer: Tracer, frames: list[bytes], phase: Phase) -> None:
    tracer.collect_by_cpu()
    before = _softnet()
    for f in frames:
        sock.send(f)
    counts: dict[int, int] = {}
    deadline = time.monotonic() + SETTLE
    while sum(counts.values()) < len(frames) and time.monotonic() < deadline:
        time.sleep(0.01)
        for cpu, events in tracer.collect_by_cpu().items():
            counts[cpu] = counts.get(cpu, 0) + len(events)
    after = _softnet()
    phase.measured = {c: counts.get(c, 0) for c in sorted(after)}
    phase.processed = {c: after[c][0] - before.get(c, (0, 0))[0] for c in sorted(after)}
    phase.received_rps = {c: after[c][1] - before.get(c, (0, 0))[1] for c in sorted(after)}


def run_rps(flows: int = FLOWS) -> RpsReport:
    online = Path("/sys/devices/system/cpu/online")
    cpus = (parse_cpu_list(online.read_text()) if online.exists() else None) or [0]
    plan = phases(flows)
    notes: list[str] = []
    results = []
    with signals_unwind(), Sandbox(rps_cpus=_mask(cpus)) as sb:
        needs = Needs()
        sendable = [
            (name, [p.data for p in (prepare(0, 1, f, sb.mac_b, needs) for f in frames) if p.data])
            for name, frames in plan
        ]
        setup_receiver(sb, needs, Options())
        notes += sb.notes
        sock = sb.sender_socket()
        with tracefs_session() as fs:
            tracer = Tracer(fs, sb.pid, device=sb.if_b)
            try:
                tracer.start()
                for name, frames in sendable:
                    phase = Phase(name, len(frames))
                    _measure(sock, tracer, frames, phase)
                    got = sum(phase.measured.values())
                    if got != len(frames):
                        notes.append(f"{name}: {got} of {len(frames)} frames seen processed")
                    results.append(phase)
            finally:
                tracer.stop()
    for phase, (_, frames) in zip(results, plan, strict=True):
        phase.predicted, phase.predicted_keys = predict(frames, cpus)
    if len(cpus) < 2:
        notes.append("one CPU online: RPS has nowhere to spread to")
    return RpsReport(cpus, results, notes, os.uname().release)
