"""capture.unsupported_linktype, naming each link type netsleuth does not decode (with its
packet count) and listing the ones it does: a capture of Bluetooth or USB frames is said to
be one, not shown as garbage."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from netsleuth.checks.frames import EVIDENCE_KINDS, FrameTally, kinds_line, most_seen, others
from netsleuth.decode.linktypes import decoded_linktypes, describe
from netsleuth.decode.registry import REGISTRY
from netsleuth.decode.table import L2, NS, PacketTable
from netsleuth.findings import Finding
from netsleuth.findings.catalogue import CATALOGUE

FID = "capture.unsupported_linktype"


class UnsupportedLinkTypes:
    def __init__(self) -> None:
        self.tally = FrameTally()
        self.per_type: dict[int, int] = {}

    def observe(self, t: PacketTable) -> None:
        rows = t.l2 == L2.UNKNOWN
        if not rows.any():
            return
        self.tally.add(f"{FID}|outer", t.frame[rows])
        lts = t.batch.linktype[rows].astype(np.int64)
        # A record of a link type that is decoded but names another one inside (PPI's
        # pph_dlt, decode/ppi.py): the inner link type is the one not decoded.
        inside = (lts >= 0) & (lts < 1 << 16)
        inside[inside] = REGISTRY.bound(NS.LINKTYPE, lts[inside])
        lts[inside] = t.key[rows][inside]
        lts, counts = np.unique(lts, return_counts=True)
        for lt, n in zip(lts, counts, strict=True):
            self.per_type[int(lt)] = self.per_type.get(int(lt), 0) + int(n)

    def merge(self, other: UnsupportedLinkTypes, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)
        for lt, n in other.per_type.items():
            self.per_type[lt] = self.per_type.get(lt, 0) + n

    def findings(self) -> list[Finding]:
        if not self.per_type:
            return []
        # A pcapng file may declare thousands of interfaces, each its own link type: the
        # summary names the most seen, the evidence the EVIDENCE_KINDS most seen.
        ranked = most_seen(self.per_type)
        named = kinds_line(ranked, describe, "link types")
        listed = sorted(ranked[:EVIDENCE_KINDS])
        evidence: dict[str, Any] = {
            "linktypes": {str(lt): {"name": describe(lt), "packets": n} for lt, n in listed},
            "decoded": [describe(lt) for lt in decoded_linktypes()],
        }
        if len(ranked) > EVIDENCE_KINDS:
            evidence["other_linktypes"] = others(ranked)
        return [
            replace(f, summary=f"{CATALOGUE[FID].summary} ({named})")
            for f in self.tally.findings({FID: evidence})
        ]
