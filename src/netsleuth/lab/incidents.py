"""`netsleuth lab incident NAME`: the incidents of shared/incidents/README.md built with
craft, replayed on this kernel, and set beside what the incident's system did.

ulb4            the zero-length IPv4 fragment pair, plain and as the mirror delivered it
                (802.1Q VLAN 10 / IPv4 / GRE key / TEB / Ethernet / IPv4)
rx-dropped-8023 RSTP BPDUs in 802.3/LLC frames (protocol 0x0004)
stgw-rps        (rps.py) RPS over every CPU of the receiver, inner flows in GRE v0, PPTP
                (GRE v1) and GRE with the routing bit: measured per-CPU spread beside
                `steer`'s prediction
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netsleuth.craft import incidents as inc
from netsleuth.craft.l2 import ether, pad
from netsleuth.craft.l3 import MF, ipv4
from netsleuth.craft.l4 import tcp
from netsleuth.lab.replay import LabReport, Options, Record, run
from netsleuth.lab.verdict import Result


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    frames: tuple[tuple[str, bytes], ...]  # (what the frame is, Ethernet frame)
    listen: tuple[tuple[str, int], ...]
    production: str  # what the incident's system did, from the write-up


def _ulb4() -> Scenario:
    seg = tcp(inc.INNER_SRC, inc.INNER_DST, 40000, 443, bytes(1380), seq=1, flags="A")
    first = ipv4(inc.INNER_SRC, inc.INNER_DST, seg[:1400], 6, ident=0x5866, flags=MF, ttl=52)
    empty = ipv4(inc.INNER_SRC, inc.INNER_DST, b"", 6, ident=0x5866, frag_off=1400, ttl=52)
    mirrored = inc.incident1_poison_fragment(normal=0)
    return Scenario(
        "ulb4",
        "incident 1: a zero-length IPv4 fragment (offset 1400, MF=0, total length 20)",
        (
            ("first fragment (1400 bytes, MF)", ether(first, 0x0800)),
            ("zero-length last fragment, padded", pad(ether(empty, 0x0800))),
            ("first fragment in VLAN 10 + GRE-TEB", mirrored[0][1]),
            ("zero-length fragment in VLAN 10 + GRE-TEB", mirrored[1][1]),
        ),
        (("tcp", 443),),
        "DPDK before 18.11 (rte_ipv4_frag_reassemble_packet) accepted the zero-length "
        "fragment and chained its empty mbuf (data_len 0, pkt_len 26) to the first; the "
        "load balancer forwarded the chain, i40e wrote a zero-length TX descriptor and the "
        "NIC hung its TX queue: RX normal, TX zero until restart (fix: DPDK 7f0983ee331c).",
    )


def _rx_dropped_8023() -> Scenario:
    bpdus = [f for _, f in inc.incident2_stp_llc(4) if int.from_bytes(f[12:14]) < 0x600]
    return Scenario(
        "rx-dropped-8023",
        "incident 2: RSTP BPDUs in 802.3/LLC frames (DSAP=SSAP=0x42), protocol 0x0004",
        tuple((f"BPDU {i + 1} (802.3, LLC 0x42)", f) for i, f in enumerate(bpdus)),
        (),
        "CentOS 7 (3.10.0-693), virtio_net: each BPDU dropped at "
        "__netif_receive_skb_core+0x3d2 with skb->protocol 0x0004 (no protocol handler), "
        "rx_dropped +1 every 1-2 s; later kernels count such frames in rx_nohandler only "
        "for exact-match devices.",
    )


SCENARIOS = {"ulb4": _ulb4, "rx-dropped-8023": _rx_dropped_8023}
NAMES = (*SCENARIOS, "stgw-rps")


def this_kernel(results: list[Result], labels: list[str]) -> str:
    """One line per frame of what this kernel did, for the side-by-side block."""
    lines = []
    for label, r in zip(labels, results, strict=True):
        moved = ", ".join(
            f"{k} +{v}"
            for k, v in r.counters.items()
            if not k.startswith(("In", "Out")) or k.endswith(("Errors", "Fails", "Protos"))
        )
        what = r.verdict
        if r.verdict == "dropped":
            what = f"dropped at {r.where} ({r.reason or 'no reason'})"
        if r.freed_earlier:
            what += f", and with it the queued skb of frame {r.freed_earlier[0]}"
        lines.append(f"{label}: {what}" + (f"; {moved}" if moved else "; no counter moved"))
    return "\n".join(lines)


@dataclass
class IncidentReport:
    scenario: Scenario
    lab: LabReport

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.scenario.frames]

    def to_json(self) -> dict[str, Any]:
        doc = self.lab.to_json()
        for f, label in zip(doc["frames"], self.labels, strict=True):
            f["what"] = label
        return {
            "incident": self.scenario.name,
            "title": self.scenario.title,
            "production": self.scenario.production,
            "this_kernel": this_kernel(self.lab.results, self.labels).splitlines(),
            **doc,
        }


def run_incident(name: str) -> IncidentReport:
    sc = SCENARIOS[name]()
    records = [Record(i + 1, 1, f) for i, (_, f) in enumerate(sc.frames)]
    return IncidentReport(sc, run(records, Options(listen=sc.listen)))
