"""What a check is: it sees every batch of one input, then reports."""

from __future__ import annotations

from typing import Protocol

from netsleuth.decode.table import PacketTable
from netsleuth.model import Finding


class Check(Protocol):
    def observe(self, table: PacketTable) -> None: ...

    def findings(self) -> list[Finding]: ...
