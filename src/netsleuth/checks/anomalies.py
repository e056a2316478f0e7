"""Decode anomalies as findings: one per anomaly id and layer, with frame numbers.

An inner packet cut by the outer IP fragmentation (checks.layers.cut_by_outer_fragment) is
not malformed: the anomalies that only say "it runs past the bytes here" are not reported
for it (a total length shorter than the header still is)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import cut_by_outer_fragment
from netsleuth.decode.table import ANOMALY_IDS, TRUNCATION, Anomaly, PacketTable
from netsleuth.model import Finding

# What an inner packet that continues in the next outer fragment shows: headers or lengths
# that run past the end of this fragment.
CUT = TRUNCATION | {
    Anomaly.IPV4_BAD_TOTAL_LENGTH,
    Anomaly.IPV6_BAD_PAYLOAD_LENGTH,
    Anomaly.UDP_BAD_LENGTH,
    Anomaly.L2_BAD_LENGTH,
}
CUT_MASK = np.uint64(sum(1 << int(a) for a in CUT))
# Reported by a check of their own, which says what was seen (checks/ethertypes.py).
OWN_CHECK = frozenset({Anomaly.L2_UNKNOWN_ETHERTYPE})


class DecodeAnomalies:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, table: PacketTable) -> None:
        inner = table.anom_inner
        cut = cut_by_outer_fragment(table) & ((inner & CUT_MASK) != 0)
        if cut.any():
            inner = inner.copy()
            short = np.uint64(1 << int(Anomaly.IPV4_BAD_TOTAL_LENGTH))
            keep = np.where(_really_short(table, cut), short, np.uint64(0))
            inner[cut] &= ~CUT_MASK | keep
        for layer, bits in (("outer", table.anom_outer), ("inner", inner)):
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

    def findings(self) -> list[Finding]:
        return self.tally.findings()


def _really_short(t: PacketTable, rows: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Among `rows`, inner IPv4 headers whose total length is below their header length:
    malformed whatever the fragmentation."""
    ip = t.inner_raw
    short: NDArray[np.bool_] = (
        (ip.ver[rows] == 4) & (ip.tot_len[rows] < ip.hlen[rows]) & (ip.hlen[rows] > 0)
    )
    return short
