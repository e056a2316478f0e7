"""Tunnelled traffic fragmented outside the tunnel (RFC 4459 section 3): counted once per
outer fragment that carries a tunnel header, so the operator learns the path MTU is short
and why the inner packets look cut."""

from __future__ import annotations

import numpy as np

from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import cut_by_outer_fragment
from netsleuth.decode.table import PacketTable
from netsleuth.model import Finding

ID = "tunnel.outer_fragmented"


class OuterFragmentedTunnels:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, table: PacketTable) -> None:
        self.tally.add(f"{ID}|outer", table.frame[np.flatnonzero(cut_by_outer_fragment(table))])

    def findings(self) -> list[Finding]:
        return self.tally.findings()
