"""Merging the findings of fanout workers: a finding one worker saw is kept as it is; one
several saw is summed, keeping the packets of the worker that saw most."""

from __future__ import annotations

from netsleuth.findings import Finding, Severity
from netsleuth.live.run import merge_findings


def f(fid: str, count: int, packets: tuple[int, ...], layer: str | None = "inner") -> Finding:
    return Finding(fid, Severity.CRITICAL, count, "s", "e", packets, layer)


def test_merge_sums_shared_ids_and_keeps_the_rest() -> None:
    w0 = [f("ipv4.fragment.zero_length", 1, (22,)), f("l2.runt", 3, (1, 2, 3), None)]
    w1 = [f("ipv4.fragment.zero_length", 2, (5, 9)), f("ipv4.fragment.overlap", 1, (7,))]
    out = {(x.id, x.layer): x for x in merge_findings([w0, w1])}
    zl = out[("ipv4.fragment.zero_length", "inner")]
    assert (zl.count, zl.packets, zl.evidence["workers"]) == (3, (5, 9), {"0": 1, "1": 2})
    assert out[("l2.runt", None)] == w0[1]
    assert out[("ipv4.fragment.overlap", "inner")] == w1[1]
    assert merge_findings([w0]) == w0
