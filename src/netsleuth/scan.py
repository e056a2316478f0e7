"""The scan pipeline: inputs -> batches -> decode -> checks -> one result per run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from netsleuth import cores
from netsleuth.checks import Check, collect, new_checks, observe_all
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.checks.tunnel_kinds import count_tunnels
from netsleuth.decode import DEFAULT_TUNNEL_DEPTH, L2, PacketTable
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.pipeline import (
    InputResult,
    Progress,
    few_collections,
    issue_finding,
    open_input,
    tables,
)

__all__ = ["InputResult", "Progress", "ScanResult", "Summary", "scan"]


@dataclass
class Summary:
    """Counts over every decoded packet of the run."""

    link: Counter[str] = field(default_factory=Counter)
    l3: Counter[str] = field(default_factory=Counter)
    tunnels: Counter[str] = field(default_factory=Counter)
    vlan_tagged: int = 0
    mpls: int = 0
    fragments: int = 0

    def observe(self, t: PacketTable) -> None:
        _count(self.link, t.l2, {k.value: k.name.lower() for k in L2})
        ver = t.outer.ver
        self.l3["ipv4"] += int(np.count_nonzero(ver == 4))
        self.l3["ipv6"] += int(np.count_nonzero(ver == 6))
        non_ip = ver == 0
        if non_ip.any():
            llc = non_ip & (t.llc_dsap >= 0)
            arp = non_ip & ((t.ethertype == 0x0806) | (t.ethertype == 0x8035))
            self.l3["802.2-llc"] += int(np.count_nonzero(llc))
            self.l3["arp"] += int(np.count_nonzero(arp & ~llc))
            self.l3["other"] += int(np.count_nonzero(non_ip & ~llc & ~arp))
        count_tunnels(t, self.tunnels)
        self.vlan_tagged += int(np.count_nonzero(t.vlan_n))
        self.mpls += int(np.count_nonzero(t.mpls_n))
        self.fragments += int(np.count_nonzero(t.outer.is_frag | t.inner.is_frag))

    def merge(self, other: Summary) -> None:
        self.link.update(other.link)
        self.l3.update(other.l3)
        self.tunnels.update(other.tunnels)
        self.vlan_tagged += other.vlan_tagged
        self.mpls += other.mpls
        self.fragments += other.fragments

    def to_json(self) -> dict[str, Any]:
        return {
            "link": _nonzero(self.link),
            "l3": _nonzero(self.l3),
            "tunnels": _nonzero(self.tunnels),
            "vlan_tagged": self.vlan_tagged,
            "mpls": self.mpls,
            "fragments": self.fragments,
        }


def _nonzero(c: Counter[str]) -> dict[str, int]:
    return {k: v for k, v in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) if v}


def _count(c: Counter[str], values: np.ndarray, names: dict[int, str]) -> None:
    for v, n in enumerate(np.bincount(values, minlength=1)):
        if n:
            c[names.get(v, str(v))] += int(n)


@dataclass
class ScanResult:
    inputs: list[InputResult]
    summary: Summary
    findings: list[Finding]

    @property
    def packets(self) -> int:
        return sum(i.packets for i in self.inputs)

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.inputs)

    @property
    def failed_inputs(self) -> list[InputResult]:
        return [i for i in self.inputs if i.error is not None]


def scan(
    paths: Sequence[str],
    *,
    tunnel_depth: int = DEFAULT_TUNNEL_DEPTH,
    progress: Progress | None = None,
    workers: int = 1,
) -> ScanResult:
    """Scan every input. With workers > 1 the inputs (and large pcap files, split into
    byte ranges) are spread over that many processes: netsleuth/scale/; the result is
    the same."""
    if workers > 1 and "-" not in paths and cores.worth_processes(paths):
        from netsleuth.scale import scan_parallel

        return scan_parallel(paths, tunnel_depth=tunnel_depth, progress=progress, workers=workers)
    summary = Summary()
    inputs: list[InputResult] = []
    findings: list[Finding] = []
    for path in paths:
        res = InputResult(path)
        inputs.append(res)
        try:
            findings.extend(scan_one(path, res, summary, tunnel_depth, progress))
        except InputError as err:
            res.error = str(err)
    return scan_result(inputs, summary, findings)


def scan_result(inputs: list[InputResult], summary: Summary, findings: list[Finding]) -> ScanResult:
    findings.sort(key=lambda f: (-f.severity, f.input or "", f.id, f.layer or ""))
    return ScanResult(inputs, summary, findings)


def scan_one(
    path: str, res: InputResult, summary: Summary, depth: int, progress: Progress | None
) -> list[Finding]:
    """One input through the pipeline: the summary counts and every check."""
    reader = open_input(path)
    checks = new_checks()
    with few_collections():
        for table in tables(reader, res, tunnel_depth=depth, progress=progress):
            summary.observe(table)
            observe_all(checks, table)
        add_rebuilt_tunnels(summary, checks)
        return input_findings(res, checks, reader.name)


def add_rebuilt_tunnels(summary: Summary, checks: list[Check]) -> None:
    """The tunnel packets only rebuilt outer datagrams show (a UDP tunnel's first outer
    fragment stops at UDP: TunnelReassembly.tunnel_kinds), into the summary's tunnels."""
    for check in checks:
        if isinstance(check, TunnelReassembly):
            summary.tunnels.update(check.tunnel_kinds)


def input_findings(res: InputResult, checks: list[Check], label: str) -> list[Finding]:
    """The findings of one input: its read issues, then its checks', labelled with it."""
    out = [issue_finding(i) for i in res.reported_issues()] + collect(checks)
    for check in checks:
        if isinstance(check, FragmentAudit):
            res.flagged_keys = check.flagged_keys
    return [replace(f, input=label) for f in out]
