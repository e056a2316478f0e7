"""`steer`: stream a capture through the NIC and RPS models and explain the spread.

Memory is bounded, whatever the capture: flows and hash keys are counted into hash tables
(tally.py) as the batches go by, and a table that reaches its limit spills to sorted runs on
disk, merged exactly at the end (spill.py).

`Steering` (every model and the flow table) is a mergeable analysis: `observe(table)`,
`merge(other)`, `finish()`. Its state is sums (per-queue and per-CPU packets and bytes,
tunnel and non-IP counts), exact key sets and exact per-flow counts (in memory or as sorted
runs), none of which depends on how the packets were cut into batches or parts: N partial
runs merged in order give what one run gives (steering/parallel.py runs the parts in worker
processes).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth import cores
from netsleuth.capture.batch import PAD, RecordBatch
from netsleuth.checks import _trains
from netsleuth.checks.copies import DeviceCopies, candidates
from netsleuth.decode.table import L2, PacketTable, Tunnel
from netsleuth.errors import InputError
from netsleuth.ethertypes import protocol_name
from netsleuth.findings import Finding
from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.pipeline import InputResult, issue_finding, open_input, tables
from netsleuth.steering.fields import FieldCache, layer_fields
from netsleuth.steering.model import (
    GRE_V1_SINCE,
    NicModel,
    RpsModel,
    flow_id,
    nic_hash,
    rps_cpu,
    rss_queue,
)
from netsleuth.steering.spill import SEAL_RECORDS, DistinctKeys, Runs, SpillDir, limits, mix
from netsleuth.steering.tally import Tally
from netsleuth.steering.toeplitz import Toeplitz

# A queue or CPU carrying more than twice the mean is what operators notice as "one core
# pegged"; below ~50 packets per bucket the ratio is noise, so no finding is made.
IMBALANCE = 2.0
MIN_PER_BUCKET = 50
COLLAPSE = 10  # distinct flows per distinct hash key that signals a layer not parsed
MIN_FLOWS = 100
NON_IP_BASE = 5  # the codes below 0 in NON_IP_NAMES
NON_IP_NAMES = {
    -1: "802.2 LLC (802.3 length field)",
    -2: "non-IP inside a tunnel",
    -3: "802.2 LLC (802.11, no SNAP EtherType)",
    -4: "802.11 without a packet (management, control, null, protected, fragments)",
    -5: "no EtherType named (another protocol behind the link layer, or no packet)",
}
# The heaviest flows kept for the report (heaviest() shows up to 10; judge uses the first).
TOP_FLOWS = 100
FLOW = np.dtype(
    [
        ("k", "<u8"),  # spill.mix(id): the key flow runs are sorted by
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

    def merge(self, other: Bucket) -> None:
        self.packets += other.packets
        self.bytes += other.bytes

    def max_over_mean(self) -> float:
        mean = float(self.packets.mean()) if self.packets.size else 0.0
        return float(self.packets.max()) / mean if mean else 0.0

    def cv(self) -> float:
        mean = float(self.packets.mean()) if self.packets.size else 0.0
        return float(self.packets.std()) / mean if mean else 0.0


@dataclass
class SteerResult:
    inputs: list[InputResult]
    nic: NicModel
    rps: RpsModel | None
    queues: Bucket
    cpus: Bucket | None
    flows: NDArray[np.void]  # the TOP_FLOWS heaviest, by packets then flow id
    distinct_flows: int
    rss_keys: int
    rps_keys: int
    tunnels: dict[str, int]
    # Frames with no IP layer, by class ("802.2 LLC", "ARP", ...): (packets, bytes).
    non_ip: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Distinct innermost flows and distinct outer flows among tunnelled packets.
    tunnelled: tuple[int, int] = (0, 0)
    # Packets and bytes the capture marks as sent by its host: left out (_modelled).
    sent: tuple[int, int] = (0, 0)
    # Copies of received packets a cooked capture took on a second device: left out.
    copies: tuple[int, int] = (0, 0)
    findings: list[Finding] = field(default_factory=list)

    @property
    def packets(self) -> int:
        return int(self.queues.packets.sum())

    def non_ip_queue(self) -> int:
        """Where the NIC puts frames it cannot hash: RSS hash 0, indirection entry 0."""
        return int(self.nic.table()[0])

    def ride_note(self) -> str | None:
        """Plain words for inner flows riding fewer outer flows, whatever the thresholds."""
        inner, outer = self.tunnelled
        if outer == 0 or inner <= outer:
            return None
        flows = "flow" if outer == 1 else "flows"
        verb = "puts them on one queue" if outer == 1 else f"spreads them over at most {outer}"
        if self.nic.parse == "outer":
            return f"{inner} inner flows ride {outer} outer {flows}: an outer-only NIC {verb}"
        return (
            f"{inner} inner flows ride {outer} outer {flows}: this NIC parses the inner "
            "headers; an outer-only NIC would put them on as few queues as outer flows"
        )

    def flows_json(self) -> dict[str, Any]:
        queue = self.non_ip_queue()
        return {
            "distinct": self.distinct_flows,
            "heaviest": heaviest(self),
            "non_ip": [
                {"class": name, "packets": p, "bytes": b, "rss": f"no hash: queue {queue}"}
                for name, (p, b) in sorted(self.non_ip.items(), key=lambda kv: -kv[1][0])
            ],
            "tunnelled": {"inner_flows": self.tunnelled[0], "outer_flows": self.tunnelled[1]},
            "note": self.ride_note(),
        }


@functools.lru_cache(maxsize=16)
def toeplitz_for(key: bytes) -> Toeplitz:
    """One set of hash tables per key, however many models (and parts) use it."""
    return Toeplitz(key)


class Steer:
    """One NIC model and optional RPS model, fed decoded batches."""

    def __init__(
        self, nic: NicModel, rps: RpsModel | None, spill: SpillDir, key_limit: int | None = None
    ) -> None:
        self.nic, self.rps = nic, rps
        self.queues = Bucket.zeros(int(nic.table().max()) + 1)
        self.cpus = Bucket.zeros(max(rps.cpus) + 1) if rps else None
        self.rss_keys = DistinctKeys(spill, key_limit)
        self.rps_keys = DistinctKeys(spill, key_limit)

    def observe(
        self, t: PacketTable, cache: FieldCache, rx: NDArray[np.int64] | None = None
    ) -> None:
        """The batch's packets through the models; only rows `rx` where it is not None
        (the batch's received packets: Steering._modelled)."""
        # A frame's size as a NIC counts it: without the FCS a record ends in (ERF's, or
        # one its capture declares: the NIC strips it before RSS and the stack see the
        # frame; PacketTable.fcs).
        size = t.frame_len
        h, l4, _ = nic_hash(t, self.nic, toeplitz_for(self.nic.key), cache)
        cpu, rh = (None, None) if self.rps is None else rps_cpu(t, self.rps, h, l4, cache)
        if rx is not None:
            size, h = size[rx], h[rx]
            cpu, rh = (None, None) if cpu is None or rh is None else (cpu[rx], rh[rx])
        self.queues.add(rss_queue(h, self.nic), size)
        self.rss_keys.add(h.astype(np.uint64))
        if cpu is not None and rh is not None and self.cpus is not None:
            self.cpus.add(cpu, size)
            self.rps_keys.add(rh.astype(np.uint64))

    def merge(self, other: Steer) -> None:
        """Add the next part's loads and hash keys (the same model's)."""
        if (other.nic, other.rps) != (self.nic, self.rps):
            raise ValueError("merging the loads of different models")
        self.queues.merge(other.queues)
        if self.cpus is not None and other.cpus is not None:
            self.cpus.merge(other.cpus)
        self.rss_keys.merge(other.rss_keys)
        self.rps_keys.merge(other.rps_keys)

    def seal(self) -> None:
        self.rss_keys.seal()
        self.rps_keys.seal()

    def finish(self, inputs: list[InputResult], traffic: TrafficResult) -> SteerResult:
        res = SteerResult(
            inputs,
            self.nic,
            self.rps,
            self.queues,
            self.cpus,
            traffic.top,
            traffic.distinct,
            self.rss_keys.count(),
            self.rps_keys.count(),
            dict(traffic.tunnels),
            dict(traffic.non_ip),
            traffic.tunnelled,
            traffic.sent,
            traffic.copies,
        )
        res.findings = judge(res)
        return res


@dataclass(frozen=True)
class TrafficResult:
    distinct: int  # distinct flows
    top: NDArray[np.void]  # the TOP_FLOWS heaviest, by packets then flow id
    tunnels: dict[str, int]  # packets by tunnel kind, in Tunnel order
    non_ip: dict[str, tuple[int, int]]  # by class name, in name order
    tunnelled: tuple[int, int]  # distinct inner and outer flows of tunnelled packets
    sent: tuple[int, int]  # packets and bytes left out as sent by the capturing host
    copies: tuple[int, int]  # and as copies of received ones from a second device


class Traffic:
    """What the traffic is, whatever the models: the real flows and the tunnels seen."""

    def __init__(
        self, spill: SpillDir, limit: int | None = None, key_limit: int | None = None
    ) -> None:
        self.tally = Tally()
        self.first: list[NDArray[np.void]] = []  # each new flow's fields, in first-seen order
        # Packets by Tunnel kind. (A dict filled as kinds appeared was ordered by the batch
        # a kind first came in: not a thing a merge of parts can reproduce.)
        self.tunnel_counts = np.zeros(len(Tunnel), dtype=np.int64)
        # Packets (row 0) and bytes (row 1) without IP, by class code + NON_IP_BASE (the
        # EtherType, or a NON_IP_NAMES code): counted in NumPy, named once at the end.
        self.non_ip_counts = np.zeros((2, NON_IP_BASE + (1 << 16)), dtype=np.int64)
        self.sent = np.zeros(2, dtype=np.int64)  # packets and bytes left out (_modelled)
        self.copies = np.zeros(2, dtype=np.int64)  # and as device copies (checks/copies.py)
        self.inner_keys = DistinctKeys(spill, key_limit)
        self.outer_keys = DistinctKeys(spill, key_limit)
        self.limit = limits()[0] if limit is None else limit
        self.runs = Runs(spill, FLOW, self.limit)

    def observe(
        self, t: PacketTable, cache: FieldCache, rx: NDArray[np.int64] | None = None
    ) -> None:
        """The batch's traffic; only rows `rx` where it is not None (Steering._modelled)."""
        kinds = t.tunnel if rx is None else t.tunnel[rx]
        self.tunnel_counts += np.bincount(kinds, minlength=len(Tunnel))[: len(Tunnel)]
        if t.n:
            self._flows(t, cache, rx)

    def _flows(self, t: PacketTable, cache: FieldCache, rx: NDArray[np.int64] | None) -> None:
        """The real flows: innermost addresses, ports and protocol. Frames without IP are
        a class of their own (by link-layer protocol), not a 0.0.0.0 flow."""
        f = layer_fields(t, np.ones(t.n, dtype=np.bool_), cache)
        fid = flow_id(f)
        ip = f.ver != 0
        if rx is not None:  # the sent packets are neither flows nor non-IP frames
            counted = np.zeros(t.n, dtype=np.bool_)
            counted[rx] = True
            other = np.flatnonzero(~ip & counted)
            ip &= counted
        else:
            other = np.flatnonzero(~ip)
        if other.shape[0]:
            self._non_ip(t, other)
        if not ip.all():
            f, fid = f.take(np.flatnonzero(ip)), fid[ip]
            wire = t.frame_len[ip]
        else:
            wire = t.frame_len
        tun = np.flatnonzero(t.tunnels[ip] > 0) if t.tunnels.any() else np.zeros(0, np.int64)
        if tun.shape[0]:
            outer = flow_id(layer_fields(t, np.zeros(t.n, dtype=np.bool_), cache))[ip]
            self.inner_keys.add(fid[tun])
            self.outer_keys.add(outer[tun])
        if len(self.tally) + fid.shape[0] > self.limit and len(self.tally):
            self._spill()
        new = self.tally.add(fid, wire)
        if new.shape[0]:
            rec = np.zeros(new.shape[0], dtype=FLOW)
            rec["id"] = fid[new]
            rec["k"] = mix(rec["id"])
            for name in ("ver", "src_hi", "src_lo", "dst_hi", "dst_lo", "proto"):
                rec[name] = getattr(f, name)[new]
            ports = f.has_ports[new]
            rec["sport"] = np.where(ports, f.sport[new], 0)
            rec["dport"] = np.where(ports, f.dport[new], 0)
            self.first.append(rec)

    def _non_ip(self, t: PacketTable, rows: NDArray[np.int64]) -> None:
        llc = t.l2[rows] == L2.IEEE8023
        code = np.where(llc, -1, t.ethertype[rows].astype(np.int64))
        # An 802.11 frame names no EtherType unless its body is LLC/SNAP (ieee80211.py);
        # nor does an ARCnet AppleTalk packet, a PKTAP record with no data, an LLC body
        # that is not SNAP behind ATM...: said so, not shown as EtherType 0x0000.
        none = (t.ethertype[rows] == 0) & ~llc
        wifi = t.l2[rows] == L2.IEEE80211
        code = np.where(none, np.where(wifi, np.where(t.llc_dsap[rows] >= 0, -3, -4), -5), code)
        code = np.where(t.tunnels[rows] > 0, -2, code)
        # The classes a batch holds, few: counted by class, not into 65,541 bins a batch.
        classes, which = np.unique(code + NON_IP_BASE, return_inverse=True)
        self.non_ip_counts[0, classes] += np.bincount(which)
        # Float weights are exact here: a batch's bytes stay far below 2^53.
        wire = t.frame_len[rows].astype(np.float64)
        self.non_ip_counts[1, classes] += np.bincount(which, weights=wire).astype(np.int64)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a worker's part, through the pool's pipe): the non-IP counts as their
        non-zero entries, not the dense 1 MB array, so that a part stays small
        (parallel.PIPE_BYTES: multi-MB messages through that pipe hung a killed worker's
        pool)."""
        state = self.__dict__.copy()
        nz = np.flatnonzero(self.non_ip_counts[0])
        state["non_ip_counts"] = (nz, self.non_ip_counts[:, nz])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        nz, counts = state["non_ip_counts"]
        dense = np.zeros((2, NON_IP_BASE + (1 << 16)), dtype=np.int64)
        dense[:, nz] = counts
        self.__dict__.update(state, non_ip_counts=dense)

    @property
    def non_ip(self) -> dict[str, tuple[int, int]]:
        """(packets, bytes) without IP by class name, in name order."""
        out: dict[str, tuple[int, int]] = {}
        for at in np.flatnonzero(self.non_ip_counts[0]).tolist():
            c = at - NON_IP_BASE
            name = NON_IP_NAMES.get(c) or protocol_name(c)
            p, b = out.get(name, (0, 0))
            out[name] = (p + int(self.non_ip_counts[0, at]), b + int(self.non_ip_counts[1, at]))
        return dict(sorted(out.items()))

    def merge(self, other: Traffic) -> None:
        """Add the next part's traffic. Its flows' records come after this part's, so a
        flow seen in both keeps the fields of its first packet, as one run keeps them."""
        self.tunnel_counts += other.tunnel_counts
        self.non_ip_counts += other.non_ip_counts
        self.sent += other.sent
        self.copies += other.copies
        self.inner_keys.merge(other.inner_keys)
        self.outer_keys.merge(other.outer_keys)
        if len(self.tally):
            self._spill(keep=True)
        if len(other.tally):
            other._spill(keep=True)
        self.runs.extend(other.runs)

    def seal(self) -> None:
        """Every flow to a sorted run (in memory if few, else on disk), the tables emptied:
        what a worker hands back."""
        if len(self.tally):
            self._spill(keep=len(self.tally) <= SEAL_RECORDS)
        self.tally = Tally(capacity=1)
        self.inner_keys.seal()
        self.outer_keys.seal()

    def finish(self) -> TrafficResult:
        """The flows and tunnels seen, exact: counted once however many models ask."""
        distinct, top = self.flows()
        tunnels = {
            kind.name.lower(): int(self.tunnel_counts[kind])
            for kind in Tunnel
            if kind != Tunnel.NONE and self.tunnel_counts[kind]
        }
        return TrafficResult(
            distinct,
            top,
            tunnels,
            self.non_ip,
            (self.inner_keys.count(), self.outer_keys.count()),
            (int(self.sent[0]), int(self.sent[1])),
            (int(self.copies[0]), int(self.copies[1])),
        )

    def _table(self) -> NDArray[np.void]:
        """The flows in memory, one record each, in first-seen order."""
        n = len(self.tally)
        out = np.concatenate(self.first) if self.first else np.zeros(0, dtype=FLOW)
        self.first = [out]
        out["packets"] = self.tally.packets[:n]
        out["bytes"] = self.tally.bytes[:n]
        return out

    def _spill(self, *, keep: bool = False) -> None:
        if keep:
            self.runs.keep(self._table())
        else:
            self.runs.write(self._table())
        self.tally = Tally()
        self.first = []

    def flows(self) -> tuple[int, NDArray[np.void]]:
        """(distinct flows, the TOP_FLOWS heaviest): exact, merged across spilled runs."""
        if not self.runs:
            table = self._table()
            return table.shape[0], _top(table)
        if len(self.tally):
            self._spill(keep=True)
        distinct = 0
        top = np.zeros(0, dtype=FLOW)
        for part in self.runs.ranges():
            r = part[np.argsort(part["k"], kind="stable")]  # a key's earliest record first
            starts = np.flatnonzero(np.r_[True, r["k"][1:] != r["k"][:-1]])
            merged = r[starts]
            merged["packets"] = np.add.reduceat(r["packets"], starts)
            merged["bytes"] = np.add.reduceat(r["bytes"], starts)
            distinct += starts.shape[0]
            top = _top(np.concatenate([top, merged]))
        return distinct, top


def _top(flows: NDArray[np.void]) -> NDArray[np.void]:
    """The TOP_FLOWS heaviest by packets, ties by flow id (what sorting by id, then stably
    by packets, gave)."""
    if flows.shape[0] > TOP_FLOWS:
        # Only flows with at least the TOP_FLOWS-th largest count can be in the top.
        floor = np.partition(flows["packets"], -TOP_FLOWS)[-TOP_FLOWS]
        flows = flows[flows["packets"] >= floor]
    return flows[np.lexsort((flows["id"], -flows["packets"]))[:TOP_FLOWS]]


Models = Sequence[tuple[NicModel, RpsModel | None]]


class Steering:
    """The steer analysis: every model and the flow table over the same traffic."""

    def __init__(
        self, models: Models, spill: SpillDir, bounds: tuple[int, int] | None = None
    ) -> None:
        flow_limit, key_limit = limits() if bounds is None else bounds
        self.steers = [Steer(nic, rps, spill, key_limit) for nic, rps in models]
        self.traffic = Traffic(spill, flow_limit, key_limit)
        # A cooked capture's copies of a received packet from a second device: the NIC's
        # RSS and the kernel's RPS see it once (checks/copies.py).
        self.copies = DeviceCopies(fragments=False)
        # A range's first frames, whose copies may repeat the range before's packets: up
        # to this frame they are left to the parent, as records (steering/parallel.py).
        self.defer = 0
        self.deferred: list[RecordBatch] = []

    def observe(self, t: PacketTable) -> None:
        cache = FieldCache.of(t)  # the batch's flow fields, shared by every model
        rx = self._modelled(t)
        self.traffic.observe(t, cache, rx)
        for run in self.steers:
            run.observe(t, cache, rx)

    def _modelled(self, t: PacketTable) -> NDArray[np.int64] | None:
        """The rows the models take (None: all), leaving out and counting two kinds.
        NIC RSS and kernel RPS steer received packets only (RPS: get_rps_cpu() from
        netif_receive_skb's path, net/core/dev.c), so what the capture marks as sent by
        the host capturing it (pcapng epb_flags outbound; a Linux cooked capture's
        PACKET_OUTGOING, as `tcpdump -i any` writes both ways; PKTAP's and ipnet's
        outbound) is left out (SteerResult.sent); a capture that says no direction (pcap
        on a port, a tap or a mirror) is taken as all received: which way it faced is
        the user's to know. And a cooked capture's copies of a received packet from a
        second device (SteerResult.copies). A range's deferred rows are left to the
        parent, uncounted."""
        sent, copy = t.sent(), self.copies.observe(t)
        left = sent if copy is None else sent | copy
        if self.defer and t.n and int(t.frame[0]) <= self.defer:
            later = np.zeros(t.n, dtype=np.bool_)
            later[candidates(t, fragments=False)] = True  # what may be a copy
            later &= t.frame <= self.defer
            self.deferred.append(take(t.batch, np.flatnonzero(later)))
            left = left | later
            sent = sent & ~later
            copy = None if copy is None else copy & ~later
        wire = t.frame_len
        self.traffic.sent += (int(sent.sum()), int(wire[sent].sum()))
        if copy is not None:
            self.traffic.copies += (int(copy.sum()), int(wire[copy].sum()))
        return np.flatnonzero(~left) if left.any() else None

    def merge(self, other: Steering, frame_offset: int = 0) -> None:
        """Add the next part's state. Nothing here holds a frame number (the read issues,
        which do, are the input record's), so frame_offset changes nothing."""
        self.traffic.merge(other.traffic)
        for mine, theirs in zip(self.steers, other.steers, strict=True):
            mine.merge(theirs)

    def seal(self) -> None:
        self.traffic.seal()
        for run in self.steers:
            run.seal()

    def tables(self) -> list[Runs]:
        """Every table's runs, in a fixed order (steering/parallel.py moves their arrays)."""
        t = self.traffic
        out = [t.runs, t.inner_keys.runs, t.outer_keys.runs]
        for run in self.steers:
            out += [run.rss_keys.runs, run.rps_keys.runs]
        return out

    def finish(self, inputs: list[InputResult]) -> list[SteerResult]:
        traffic = self.traffic.finish()  # the same traffic for every model: merged once
        # A cut or corrupt file is said by steer as by scan (the pipeline's read issues).
        issues = [
            replace(issue_finding(i), input=res.path)
            for res in inputs
            for i in res.reported_issues()
        ]
        results = [run.finish(inputs, traffic) for run in self.steers]
        for r in results:
            r.findings = issues + r.findings
        return results


def sent_note(packets: int) -> str:
    """What steer says of the sent packets it left out (Steering._modelled)."""
    return (
        f"{packets:,} packets the capture marks as sent by its host are left out: "
        "RSS and RPS steer received packets only"
    )


def copies_note(packets: int) -> str:
    """What steer says of the copies it left out."""
    return (
        f"{packets:,} packets are copies the cooked capture took of a received packet on a "
        "second device (a bridge, bond or VLAN above the NIC, `-i any`): each is modelled "
        "once, as the NIC's RSS and the kernel's RPS see it (without device names, "
        "identical packets within 1 ms count as copies too)"
    )


def take(b: RecordBatch, rows: NDArray[np.int64]) -> RecordBatch:
    """These records of a batch, their bytes copied (a range's deferred ones: the
    parent decodes them, steering/parallel.py)."""
    caplen = b.caplen[rows]
    offset = np.cumsum(caplen) - caplen
    buf = np.zeros(int(caplen.sum()) + PAD, dtype=np.uint8)
    _trains.gather(b.buf, b.offset[rows], caplen, buf[: buf.shape[0] - PAD])
    return RecordBatch(
        buf,
        offset,
        caplen,
        b.wirelen[rows],
        b.ts_ns[rows],
        b.linktype[rows],
        b.frame[rows],
        direction=None if b.direction is None else b.direction[rows],
        iface=None if b.iface is None else b.iface[rows],
        wire=b.wire,
        fcs_len=None if b.fcs_len is None else b.fcs_len[rows],
        linux=None if b.linux is None else b.linux[rows],
    )


def steer(
    paths: Sequence[str], nic: NicModel, rps: RpsModel | None, *, workers: int | None = 1
) -> SteerResult:
    return steer_many(paths, [(nic, rps)], workers=workers)[0]


def steer_many(
    paths: Sequence[str], models: Models, *, workers: int | None = 1
) -> list[SteerResult]:
    """Every model over the same traffic in one pass: each batch is decoded once. With
    workers > 1 (None: the usable cores) large inputs are spread over that many processes
    (steering/parallel.py); the result is the same."""
    if workers != 1 and "-" not in paths:
        n = workers or cores.usable_cores()
        if n > 1 and cores.worth_processes(paths):
            from netsleuth.steering.parallel import steer_parallel

            return steer_parallel(paths, models, workers=n)
    with SpillDir() as spill:
        steering = Steering(models, spill)
        inputs = []
        for path in paths:
            res = InputResult(path)
            inputs.append(res)
            steering.copies = DeviceCopies(fragments=False)  # no copy spans two inputs
            try:
                for t in tables(open_input(path), res):
                    steering.observe(t)
            except InputError as err:
                res.error = str(err)
        return steering.finish(inputs)


def judge(r: SteerResult) -> list[Finding]:
    out: list[Finding] = []
    nflows = r.distinct_flows
    outer_only = r.nic.parse == "outer" and any(
        k in r.tunnels for k in ("gre", "ipip", "ip6", "vxlan", "geneve", "pptp")
    )
    pptp_old = r.rps is not None and "pptp" in r.tunnels and r.rps.kernel < GRE_V1_SINCE

    def finding(fid: str, summary: str, evidence: dict[str, Any]) -> None:
        out.append(catalogue_finding(fid, r.packets, summary=summary, evidence=evidence))

    def collapse(side: str, keys: int, cause: str) -> None:
        """Many flows, few hash keys: the hash does not see what tells the flows apart."""
        if nflows >= MIN_FLOWS and keys * COLLAPSE <= nflows:
            finding(
                "steer.flow_key_collapse",
                f"{nflows} inner flows hash to {keys} {side.upper()} key(s): {cause}",
                {"side": side, "flows": nflows, "keys": keys},
            )

    collapse(
        "rss",
        r.rss_keys,
        "the NIC hashes only the outer header of tunnelled traffic ("
        + ", ".join(sorted(r.tunnels))
        + ")"
        if outer_only
        else "a layer is not parsed",
    )
    if r.rps is not None:
        collapse(
            "rps",
            r.rps_keys,
            f"GRE v1 (PPTP) is not dissected before Linux {GRE_V1_SINCE[0]}."
            f"{GRE_V1_SINCE[1]} (modelled kernel {r.rps.kernel[0]}.{r.rps.kernel[1]})"
            if pptp_old
            else "the flow dissector stops before the inner headers",
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
        heavy = r.flows[0]
        share = int(heavy["packets"]) / r.packets
        if share * r.queues.packets.shape[0] > 1 and share >= 0.1:
            finding(
                "steer.elephant_flow",
                f"one flow carries {share:.0%} of all packets: no hash can spread a single flow",
                {"share": round(share, 3)},
            )
    return sorted(out, key=lambda f: (-f.severity, f.id))


def _addr(ver: int, hi: int, lo: int) -> str:
    import ipaddress

    # By version, not by value: ip_address(n) takes any n < 2**32 for IPv4, so the IPv6
    # ::10.0.0.1 (RFC 4291 2.5.5.1) printed as 10.0.0.1.
    if ver == 4:
        return str(ipaddress.IPv4Address(lo))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


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
