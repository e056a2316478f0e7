"""Checks over decoded PacketTables: each sees every batch of one input, then reports.

Registration is explicit: CHECKS below is the whole list. A check is a class with
`observe(table)` and `findings()`; stateless ones are vectorized over the table, stateful
ones (the fragment audit, in a later module) keep bounded state across batches.
"""

from __future__ import annotations

from typing import Protocol

from netsleuth.checks.anomalies import DecodeAnomalies
from netsleuth.checks.capture import TruncatedPackets
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.ipv4_checksum import IPv4Checksum
from netsleuth.checks.link import LinkLayer
from netsleuth.checks.linktype import UnsupportedLinkTypes
from netsleuth.checks.transport import TCPFlags
from netsleuth.checks.tunnels import PPTP
from netsleuth.decode.table import PacketTable
from netsleuth.model import Finding


class Check(Protocol):
    def observe(self, table: PacketTable) -> None: ...

    def findings(self) -> list[Finding]: ...


CHECKS: tuple[type[Check], ...] = (
    DecodeAnomalies,
    TruncatedPackets,
    LinkLayer,
    IPv4Checksum,
    TCPFlags,
    PPTP,
    FragmentAudit,
    UnsupportedLinkTypes,
)


def new_checks() -> list[Check]:
    return [cls() for cls in CHECKS]
