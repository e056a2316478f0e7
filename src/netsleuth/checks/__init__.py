"""Checks over decoded PacketTables: each sees every batch of one input, then reports.

Registration is explicit: CHECKS below is the whole list of per-packet checks, and
new_checks() adds the one that rebuilds fragmented outer datagrams. A check is a class with
`observe(table)` and `findings()`; stateless ones are vectorized over the table, stateful
ones (the fragment audit, the outer reassembly) keep bounded state across batches.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np

from netsleuth.checks.anomalies import DecodeAnomalies
from netsleuth.checks.base import Check, Mergeable
from netsleuth.checks.capture import TruncatedPackets
from netsleuth.checks.ethertypes import UnknownEtherTypes
from netsleuth.checks.fragments import FragmentAudit, OuterKeys
from netsleuth.checks.ipv4_checksum import IPv4Checksum
from netsleuth.checks.layers import cut_by_outer_fragment
from netsleuth.checks.link import LinkLayer
from netsleuth.checks.linktype import UnsupportedLinkTypes
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.checks.transport import TCPFlags
from netsleuth.checks.tunnels import PPTP
from netsleuth.decode.table import PacketTable
from netsleuth.findings import Finding

__all__ = [
    "CHECKS",
    "Check",
    "Mergeable",
    "collect",
    "follow",
    "hide_cut",
    "new_checks",
    "observe_all",
    "stateless_checks",
]


CHECKS: tuple[type[Check], ...] = (
    DecodeAnomalies,
    UnknownEtherTypes,
    TruncatedPackets,
    LinkLayer,
    IPv4Checksum,
    TCPFlags,
    PPTP,
    FragmentAudit,
    UnsupportedLinkTypes,
)


# Every per-packet check but the fragment audit keeps a tally and merges
# (tests/test_pipeline.py holds each to it).
MERGEABLE = cast(tuple[type[Mergeable], ...], tuple(c for c in CHECKS if c is not FragmentAudit))


def per_packet_checks() -> list[Check]:
    return [cls() for cls in CHECKS]


def new_checks() -> list[Check]:
    """Every check for one input: the per-packet ones, then the reassembly of fragmented
    outer datagrams that carry tunnels (observe_all feeds the packets it rebuilds to the
    per-packet ones)."""
    return [*per_packet_checks(), TunnelReassembly()]


def stateless_checks() -> list[Mergeable]:
    """The per-packet checks whose state is a tally: each sees packets in any order and
    any split, and `merge(other, frame_offset)` adds a part (netsleuth/scale/). The
    fragment audit and the outer reassembly follow datagrams across packets instead."""
    out: list[Mergeable] = [cls() for cls in MERGEABLE]
    return out


def hide_cut(table: PacketTable) -> None:
    """The inner layer of a tunnelled packet in an outer first fragment is cut there: it is
    judged from the reassembled outer datagram (checks/outer_reassembly.py) and hidden from
    the per-packet checks, so it is neither called malformed nor counted twice."""
    cut = cut_by_outer_fragment(table)
    if cut.any():
        table.nip[cut] = np.minimum(table.nip[cut], 1)
        table.anom_inner[cut] = 0


def observe_all(checks: list[Check], table: PacketTable) -> None:
    """Feed one decoded batch to every check (its cut inner layers hidden), and the packets
    the outer reassembly rebuilt from it too (follow)."""
    hide_cut(table)
    reassembly = next(c for c in checks if isinstance(c, TunnelReassembly))
    audit = next(c for c in checks if isinstance(c, FragmentAudit))
    others = [c for c in checks if c is not reassembly and c is not audit]
    for check in others:
        check.observe(table)
    follow(reassembly, audit, others, table)


def follow(
    reassembly: TunnelReassembly,
    audit: FragmentAudit,
    others: list[Check],
    table: PacketTable,
    *,
    now: int | None = None,
) -> None:
    """The outer reassembly over one batch (`now`: FragmentAudit.observe), then the fragment
    audit over the batch and the packets rebuilt from it together (their inner fragments
    in frame order), and those packets to the `others`."""
    # A cooked capture's copies of one received fragment (checks/copies.py) are left out of
    # both; the batch's outer fragments are keyed and grouped once for both (OuterKeys).
    outer = OuterKeys(table, audit.copies.observe(table))
    reassembly.observe(table, now=now, outer=outer)
    rebuilt = reassembly.take_rebuilt()
    audit.observe(table, now=now, rebuilt=rebuilt, outer=outer)
    for packets in rebuilt:
        for other in others:
            other.observe(packets)


def collect(checks: list[Check]) -> list[Finding]:
    """Every check's findings. An inner-layer finding on a frame that completed a
    reassembled outer datagram says which frames carried that datagram."""
    out = [f for check in checks for f in check.findings()]
    rebuilt = {
        int(str(e["frame"])): e
        for check in checks
        if isinstance(check, TunnelReassembly)
        for e in check.evidence
    }
    if not rebuilt:
        return out
    return [
        dataclasses.replace(f, evidence={**f.evidence, "reassembled": hits})
        if f.layer == "inner" and (hits := [rebuilt[p] for p in f.packets if p in rebuilt])
        else f
        for f in out
    ]
