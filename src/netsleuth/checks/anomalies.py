"""Decode anomalies as findings: one per anomaly id and layer, with frame numbers."""

from __future__ import annotations

import numpy as np

from netsleuth.checks.frames import FrameTally
from netsleuth.decode.table import ANOMALY_IDS, Anomaly, PacketTable
from netsleuth.findings import Finding

# Reported by a check of their own, which says what was seen (checks/ethertypes.py).
OWN_CHECK = frozenset({Anomaly.L2_UNKNOWN_ETHERTYPE})


class DecodeAnomalies:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, table: PacketTable) -> None:
        for layer, bits in (("outer", table.anom_outer), ("inner", table.anom_inner)):
            present = int(np.bitwise_or.reduce(bits)) if bits.shape[0] else 0
            if not present:
                continue
            for anomaly, fid in ANOMALY_IDS.items():
                if anomaly in OWN_CHECK:
                    continue
                bit = 1 << int(anomaly)
                if present & bit:
                    hit = (bits & np.uint64(bit)) != 0
                    self.tally.add(f"{fid}|{layer}", table.frame[hit])

    def merge(self, other: DecodeAnomalies, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)

    def findings(self) -> list[Finding]:
        return self.tally.findings()
