"""`steer`: stream a capture through the NIC and RPS models and explain the spread.

Memory is bounded by distinct flows, not packets: per batch the flows are reduced by one
sort, and the accumulated table is re-reduced whenever it grows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture import open_capture
from netsleuth.checks.catalogue import catalogue_finding
from netsleuth.decode import decode
from netsleuth.decode.table import PacketTable, Tunnel
from netsleuth.errors import InputError
from netsleuth.model import Finding, Severity
from netsleuth.scan import InputResult
from netsleuth.steering.fields import layer_fields
from netsleuth.steering.model import (
    GRE_V1_SINCE,
    NicModel,
    RpsModel,
    mix64,
    nic_hash,
    rps_cpu,
    rss_queue,
)
from netsleuth.steering.toeplitz import Toeplitz

# A queue or CPU carrying more than twice the mean is what operators notice as "one core
# pegged"; below ~50 packets per bucket the ratio is noise, so no finding is made.
IMBALANCE = 2.0
MIN_PER_BUCKET = 50
COLLAPSE = 10  # distinct flows per distinct hash key that signals a layer not parsed
MIN_FLOWS = 100
FLOW = np.dtype(
    [
        ("id", "<u8"),
        ("packets", "<i8"),
        ("bytes", "<i8"),
        ("ver", "u1"),
        ("src_hi", "<u8"),
        ("src_lo", "<u8"),
        ("dst_hi", "<u8"),
        ("dst_lo", "<u8"),
        ("sport", "<u2"),
        ("dport", "<u2"),
        ("proto", "u1"),
    ]
)
COMPACT_AT = 1 << 20
# Flow records are ~70 bytes: merged at 256k of them (~18 MB) to keep the peak low.
FLOW_COMPACT_AT = 1 << 18


@dataclass
class Bucket:
    packets: NDArray[np.int64]
    bytes: NDArray[np.int64]

    @classmethod
    def zeros(cls, n: int) -> Bucket:
        return cls(np.zeros(n, np.int64), np.zeros(n, np.int64))

    def add(self, index: NDArray[np.int64], size: NDArray[np.int64]) -> None:
        n = self.packets.shape[0]
        self.packets += np.bincount(index, minlength=n)[:n]
        self.bytes += np.bincount(index, weights=size, minlength=n)[:n].astype(np.int64)

    def max_over_mean(self) -> float:
        mean = float(self.packets.mean()) if self.packets.size else 0.0
        return float(self.packets.max()) / mean if mean else 0.0

    def cv(self) -> float:
        mean = float(self.packets.mean()) if self.packets.size else 0.0
        return float(self.packets.std()) / mean if mean else 0.0


class Distinct:
    """Distinct values of a stream of uint64 arrays, memory bounded by the distinct count."""

    def __init__(self) -> None:
        self.parts: list[NDArray[np.uint64]] = []
        self.size = 0

    def add(self, values: NDArray[np.uint64]) -> None:
        # Each batch is sorted and deduplicated (a plain sort: ~3 ns a value); the runs are
        # merged when there are many (a stable sort of sorted runs is a merge).
        part = _sorted_distinct(np.sort(values))
        self.parts.append(part)
        self.size += part.shape[0]
        if self.size > COMPACT_AT:
            self.parts = [self._merged()]
            self.size = self.parts[0].shape[0]

    def _merged(self) -> NDArray[np.uint64]:
        return _sorted_distinct(np.sort(np.concatenate(self.parts), kind="stable"))

    def count(self) -> int:
        return int(self._merged().shape[0]) if self.parts else 0


def _sorted_distinct(v: NDArray[np.uint64]) -> NDArray[np.uint64]:
    return v[_run_starts(v)]


def _run_starts(v: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Where each run of equal values of a sorted array begins (the flow table, the
    distinct counts and their merges all group this way)."""
    new = np.empty(v.shape[0], dtype=np.bool_)
    new[:1] = True
    np.not_equal(v[1:], v[:-1], out=new[1:])
    return np.flatnonzero(new)


@dataclass
class SteerResult:
    inputs: list[InputResult]
    nic: NicModel
    rps: RpsModel | None
    queues: Bucket
    cpus: Bucket | None
    flows: NDArray[np.void]
    rss_keys: int
    rps_keys: int
    tunnels: dict[str, int]
    findings: list[Finding] = field(default_factory=list)

    @property
    def packets(self) -> int:
        return int(self.queues.packets.sum())


class Steer:
    """One NIC model and optional RPS model, fed decoded batches."""

    def __init__(self, nic: NicModel, rps: RpsModel | None, toeplitz: Toeplitz) -> None:
        self.nic, self.rps = nic, rps
        self.toeplitz = toeplitz
        self.queues = Bucket.zeros(int(nic.table().max()) + 1)
        self.cpus = Bucket.zeros(max(rps.cpus) + 1) if rps else None
        self.rss_keys, self.rps_keys = Distinct(), Distinct()

    def observe(self, t: PacketTable) -> None:
        size = t.batch.wirelen
        h, l4, _ = nic_hash(t, self.nic, self.toeplitz)
        self.queues.add(rss_queue(h, self.nic), size)
        self.rss_keys.add(h.astype(np.uint64))
        if self.rps is not None and self.cpus is not None:
            cpu, rh = rps_cpu(t, self.rps, h, l4)
            self.cpus.add(cpu, size)
            self.rps_keys.add(rh.astype(np.uint64))

    def result(
        self, inputs: list[InputResult], traffic: Traffic, flows: NDArray[np.void]
    ) -> SteerResult:
        res = SteerResult(
            inputs,
            self.nic,
            self.rps,
            self.queues,
            self.cpus,
            flows,
            self.rss_keys.count(),
            self.rps_keys.count(),
            traffic.tunnels,
        )
        res.findings = judge(res)
        return res


class Traffic:
    """What the traffic is, whatever the models: the real flows and the tunnels seen."""

    def __init__(self) -> None:
        self.flow_parts: list[NDArray[np.void]] = []
        self.flow_size = 0
        self.tunnels: dict[str, int] = {}

    def observe(self, t: PacketTable) -> None:
        counts = np.bincount(t.tunnel, minlength=len(Tunnel))
        for kind in Tunnel:
            if kind != Tunnel.NONE and counts[kind]:
                name = kind.name.lower()
                self.tunnels[name] = self.tunnels.get(name, 0) + int(counts[kind])
        if t.n:
            self._flows(t)

    def _flows(self, t: PacketTable) -> None:
        """The real flows: innermost addresses, ports and protocol, reduced per batch."""
        f = layer_fields(t, np.ones(t.n, dtype=np.bool_))
        sport = np.where(f.has_ports, f.sport, 0).astype(np.uint16)
        dport = np.where(f.has_ports, f.dport, 0).astype(np.uint16)
        tail = cast(
            "NDArray[np.uint64]",
            (sport.astype(np.uint64) << np.uint64(48))
            | (dport.astype(np.uint64) << np.uint64(32))
            | f.proto.astype(np.uint64),
        )
        fid = mix64([f.src_hi, f.src_lo, f.dst_hi, f.dst_lo, tail], 1)
        # Group by sorting once: runs of equal ids are the flows of this batch.
        order = np.argsort(fid)
        sid = fid[order]
        starts = _run_starts(sid)
        first = order[starts]
        rec = np.zeros(starts.shape[0], dtype=FLOW)
        rec["id"] = sid[starts]
        rec["packets"] = np.diff(np.append(starts, t.n))
        rec["bytes"] = np.add.reduceat(t.batch.wirelen[order], starts)
        for name in ("ver", "src_hi", "src_lo", "dst_hi", "dst_lo", "proto"):
            rec[name] = getattr(f, name)[first]
        rec["sport"] = sport[first]
        rec["dport"] = dport[first]
        self.flow_parts.append(rec)
        self.flow_size += rec.shape[0]
        if self.flow_size > FLOW_COMPACT_AT:
            self.flow_parts = [_merge(self.flow_parts)]
            self.flow_size = self.flow_parts[0].shape[0]

    def flows(self) -> NDArray[np.void]:
        if not self.flow_parts:
            return np.zeros(0, dtype=FLOW)
        self.flow_parts = [_merge(self.flow_parts)]
        return self.flow_parts[0]


def _merge(parts: list[NDArray[np.void]]) -> NDArray[np.void]:
    """One record per flow id. Each part is sorted by id already, so the stable sort of
    their concatenation is a merge of sorted runs."""
    allf = np.concatenate(parts)
    if allf.shape[0] == 0:
        return allf
    order = np.argsort(allf["id"], kind="stable")
    ids = allf["id"][order]
    starts = _run_starts(ids)
    out = allf[order[starts]]
    out["packets"] = np.add.reduceat(allf["packets"][order], starts)
    out["bytes"] = np.add.reduceat(allf["bytes"][order], starts)
    return out


def steer(paths: Sequence[str], nic: NicModel, rps: RpsModel | None) -> SteerResult:
    return steer_many(paths, [(nic, rps)])[0]


def steer_many(
    paths: Sequence[str], models: Sequence[tuple[NicModel, RpsModel | None]]
) -> list[SteerResult]:
    """Every model over the same traffic in one pass: each batch is decoded once."""
    tables: dict[bytes, Toeplitz] = {}  # one set of hash tables per key, not per model
    for nic, _ in models:
        if nic.key not in tables:
            tables[nic.key] = Toeplitz(nic.key)
    runs = [Steer(nic, rps, tables[nic.key]) for nic, rps in models]
    traffic = Traffic()
    inputs = []
    for path in paths:
        res = InputResult(path)
        inputs.append(res)
        try:
            reader = open_capture(path)
            res.format = reader.kind
            for batch in reader.batches():
                t = decode(batch)
                traffic.observe(t)
                for run in runs:
                    run.observe(t)
                res.packets += len(batch)
                res.bytes += int(batch.wirelen.sum())
        except InputError as err:
            res.error = str(err)
    flows = traffic.flows()  # the same traffic for every model: merged once
    return [run.result(inputs, traffic, flows) for run in runs]


def judge(r: SteerResult) -> list[Finding]:
    out: list[Finding] = []
    nflows = int(r.flows.shape[0])
    outer_only = r.nic.parse == "outer" and any(
        k in r.tunnels for k in ("gre", "ipip", "ip6", "vxlan", "geneve", "pptp")
    )
    pptp_old = r.rps is not None and "pptp" in r.tunnels and r.rps.kernel < GRE_V1_SINCE

    def finding(fid: str, summary: str, evidence: dict[str, Any]) -> None:
        out.append(catalogue_finding(fid, r.packets, summary=summary, evidence=evidence))

    if nflows >= MIN_FLOWS and r.rss_keys * COLLAPSE <= nflows:
        cause = (
            (
                "the NIC hashes only the outer header of tunnelled traffic ("
                + ", ".join(sorted(r.tunnels))
                + ")"
            )
            if outer_only
            else "a layer is not parsed"
        )
        finding(
            "steer.flow_key_collapse",
            f"{nflows} inner flows hash to {r.rss_keys} RSS key(s): {cause}",
            {"side": "rss", "flows": nflows, "keys": r.rss_keys},
        )
    if r.rps is not None and nflows >= MIN_FLOWS and r.rps_keys * COLLAPSE <= nflows:
        cause = (
            f"GRE v1 (PPTP) is not dissected before Linux {GRE_V1_SINCE[0]}."
            f"{GRE_V1_SINCE[1]} (modelled kernel {r.rps.kernel[0]}.{r.rps.kernel[1]})"
            if pptp_old
            else "the flow dissector stops before the inner headers"
        )
        finding(
            "steer.flow_key_collapse",
            f"{nflows} inner flows hash to {r.rps_keys} RPS key(s): {cause}",
            {"side": "rps", "flows": nflows, "keys": r.rps_keys},
        )
    for fid, bucket, what in (
        ("steer.rss_imbalance", r.queues, "queue"),
        ("steer.rps_imbalance", r.cpus, "CPU"),
    ):
        if bucket is None:
            continue
        ratio = bucket.max_over_mean()
        active = bucket.packets[bucket.packets > 0]
        if ratio >= IMBALANCE and r.packets >= MIN_PER_BUCKET * bucket.packets.shape[0]:
            top = int(np.argmax(bucket.packets))
            finding(
                fid,
                f"{what} {top} takes {bucket.packets[top] / max(r.packets, 1):.0%} "
                f"of packets ({ratio:.1f}x the mean; {active.shape[0]} of "
                f"{bucket.packets.shape[0]} {what}s busy)",
                {"max_over_mean": round(ratio, 2), "cv": round(bucket.cv(), 3)},
            )
    if nflows and r.packets:
        heavy = r.flows[np.argmax(r.flows["packets"])]
        share = int(heavy["packets"]) / r.packets
        if share * r.queues.packets.shape[0] > 1 and share >= 0.1:
            finding(
                "steer.elephant_flow",
                f"one flow carries {share:.0%} of all packets: no hash can spread a single flow",
                {"share": round(share, 3)},
            )
    return sorted(out, key=lambda f: (-f.severity, f.id))


def severity_max(findings: list[Finding]) -> Severity | None:
    return max((f.severity for f in findings), default=None)


def _addr(ver: int, hi: int, lo: int) -> str:
    import ipaddress

    return str(ipaddress.ip_address(lo if ver == 4 else (hi << 64) | lo))


def heaviest(r: SteerResult, n: int = 10) -> list[dict[str, object]]:
    """The n biggest flows by packets (innermost addresses and ports): the ones no hash can
    split, and the first to look at when one queue or CPU is hot."""
    if r.flows.shape[0] == 0:
        return []
    top = r.flows[np.argsort(-r.flows["packets"], kind="stable")[:n]]
    total = max(r.packets, 1)
    return [
        {
            "src": _addr(int(f["ver"]), int(f["src_hi"]), int(f["src_lo"])),
            "dst": _addr(int(f["ver"]), int(f["dst_hi"]), int(f["dst_lo"])),
            "sport": int(f["sport"]),
            "dport": int(f["dport"]),
            "proto": int(f["proto"]),
            "packets": int(f["packets"]),
            "bytes": int(f["bytes"]),
            "share": round(int(f["packets"]) / total, 4),
        }
        for f in top
    ]
