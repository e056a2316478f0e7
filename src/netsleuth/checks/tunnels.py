"""gre.v1_pptp: PPTP traffic, which older kernels' RPS and most NICs' RSS cannot spread."""

from __future__ import annotations

import numpy as np

from netsleuth.checks.catalogue import CATALOGUE, catalogue_finding
from netsleuth.checks.frames import FrameTally
from netsleuth.decode.table import PacketTable, Tunnel
from netsleuth.model import Finding

ID = "gre.v1_pptp"


class PPTP:
    def __init__(self) -> None:
        self.tally = FrameTally()
        self.calls: set[int] = set()

    def observe(self, t: PacketTable) -> None:
        pptp = (t.tunnel == Tunnel.PPTP) | (t.tunnel_inner == Tunnel.PPTP)
        if pptp.any():
            self.tally.add(ID, t.frame[pptp])
            if len(self.calls) < 100_000:
                self.calls.update(np.unique(t.gre_key[pptp]).tolist())

    def findings(self) -> list[Finding]:
        if ID not in self.tally.count:
            return []
        info = CATALOGUE[ID]
        return [
            catalogue_finding(
                ID,
                self.tally.count[ID],
                tuple(self.tally.frames[ID]),
                "outer",
                summary=f"{info.summary} ({len(self.calls)} call id(s))",
                evidence={"call_ids": len(self.calls)},
            )
        ]
