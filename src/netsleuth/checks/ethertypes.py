"""l2.unknown_ethertype, said with what was seen: each EtherType nothing decodes, with its
registered name (IEEE's public EtherType list, as the kernel's if_ether.h names them) and
its count, so "LLDP x12, EAPOL x3" reads as harmless and an unknown value stands out."""

from __future__ import annotations

from typing import Any

import numpy as np

from netsleuth.checks.frames import EVIDENCE_KINDS, FrameTally, kinds_line, most_seen, others
from netsleuth.decode.table import Anomaly, PacketTable
from netsleuth.ethertypes import ETH_P
from netsleuth.findings import Finding
from netsleuth.findings.catalogue import CATALOGUE, catalogue_finding

ID = "l2.unknown_ethertype"
BIT = np.uint64(1 << int(Anomaly.L2_UNKNOWN_ETHERTYPE))


def ethertype_label(value: int) -> str:
    name = ETH_P.get(value)
    if value == 0:
        return "no EtherType (link-layer protocol not decoded)"
    return f"{name} (0x{value:04x})" if name else f"0x{value:04x} (unregistered here)"


class UnknownEtherTypes:
    def __init__(self) -> None:
        self.tally = FrameTally()
        self.seen: dict[int, int] = {}

    def observe(self, t: PacketTable) -> None:
        hit = (t.anom_outer & BIT) != 0
        if not hit.any():
            return
        self.tally.add(ID, t.frame[hit])
        values, counts = np.unique(t.ethertype[hit], return_counts=True)
        for v, n in zip(values.tolist(), counts.tolist(), strict=True):
            self.seen[v] = self.seen.get(v, 0) + n

    def merge(self, other: UnknownEtherTypes, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)
        for v, n in other.seen.items():
            self.seen[v] = self.seen.get(v, 0) + n

    def findings(self) -> list[Finding]:
        if ID not in self.tally.count:
            return []
        ranked = most_seen(self.seen)
        kinds = kinds_line(ranked, ethertype_label, "EtherTypes")
        listed = ranked[:EVIDENCE_KINDS]
        evidence: dict[str, Any] = {
            "ethertypes": [{"ethertype": v, "name": ETH_P.get(v), "count": n} for v, n in listed]
        }
        if len(ranked) > EVIDENCE_KINDS:
            evidence["other_ethertypes"] = others(ranked)
        return [
            catalogue_finding(
                ID,
                self.tally.count[ID],
                tuple(self.tally.frames[ID]),
                "outer",
                summary=f"{CATALOGUE[ID].summary}: {kinds}",
                evidence=evidence,
            )
        ]
