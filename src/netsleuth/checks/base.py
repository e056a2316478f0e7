"""What a check is: it sees every batch of one input, then reports."""

from __future__ import annotations

from typing import Any, Protocol

from netsleuth.decode.table import PacketTable
from netsleuth.findings import Finding


class Check(Protocol):
    def observe(self, table: PacketTable) -> None: ...

    def findings(self) -> list[Finding]: ...


class Mergeable(Check, Protocol):
    """A check whose state is a tally: `merge` adds the state of a later part of the same
    input, whose frame numbers start after `frame_offset` records."""

    def merge(self, other: Any, frame_offset: int = 0) -> None: ...
