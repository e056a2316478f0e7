"""gre.v1_pptp: PPTP traffic, which older kernels' RPS and most NICs' RSS cannot spread."""

from __future__ import annotations

from netsleuth.arrays import distinct
from netsleuth.checks.frames import FrameTally
from netsleuth.decode.table import PacketTable, Tunnel
from netsleuth.findings import Finding
from netsleuth.findings.catalogue import CATALOGUE, catalogue_finding

ID = "gre.v1_pptp"
MAX_CALLS = 100_000  # call ids remembered: the smallest ones, so parts merge exactly


def _bounded(calls: set[int]) -> set[int]:
    return calls if len(calls) <= MAX_CALLS else set(sorted(calls)[:MAX_CALLS])


class PPTP:
    def __init__(self) -> None:
        self.tally = FrameTally()
        self.calls: set[int] = set()

    def observe(self, t: PacketTable) -> None:
        outer = t.tunnel == Tunnel.PPTP
        # PPTP inside another tunnel (e.g. 4in6): its GRE rides the inner IP layer.
        inner = ~outer & (t.tunnels >= 2) & (t.tunnel_inner == Tunnel.PPTP)
        for layer, hit in (("outer", outer), ("inner", inner)):
            if hit.any():
                self.tally.add(f"{ID}|{layer}", t.frame[hit])
                self.calls.update(distinct(t.gre_key[hit]).tolist())
                self.calls = _bounded(self.calls)

    def merge(self, other: PPTP, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)
        self.calls = _bounded(self.calls | other.calls)

    def findings(self) -> list[Finding]:
        info = CATALOGUE[ID]
        return [
            catalogue_finding(
                ID,
                count,
                tuple(self.tally.frames[key]),
                key.partition("|")[2],
                summary=f"{info.summary} ({len(self.calls)} call id(s))",
                evidence={"call_ids": len(self.calls)},
            )
            for key, count in self.tally.count.items()
        ]
