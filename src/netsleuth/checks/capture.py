"""Properties of the capture rather than of the packets: snap-length truncation."""

from __future__ import annotations

from netsleuth.checks.frames import FrameTally
from netsleuth.decode.table import PacketTable
from netsleuth.findings import Finding

ID = "capture.truncated_packet"


class TruncatedPackets:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, table: PacketTable) -> None:
        self.tally.add(ID, table.frame[table.snapped])

    def merge(self, other: TruncatedPackets, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)

    def findings(self) -> list[Finding]:
        return self.tally.findings()
