"""host.listen_hash_hotspot from a listening-socket model."""

from __future__ import annotations

from dataclasses import asdict

from netsleuth.findings import Finding
from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.host.listen import LHASH2_SINCE, ListenModel

# Each walked socket costs a compute_score() call with a few cache misses; ~100 per SYN is
# where softirq time per SYN starts to dominate (incident 3 saw ~7800).
HOTSPOT = 100
ID = "host.listen_hash_hotspot"


def judge(m: ListenModel) -> list[Finding]:
    if m.per_syn_running < HOTSPOT:
        return []
    k = m.kernel
    summary = (
        f"{m.sockets:,} listening sockets on {m.ports:,} ports (reuseport groups of up "
        f"to {m.biggest_group}) in 32 port-only buckets: ~{m.per_syn_running:,.0f} "
        f"sockets walked per SYN under Linux {k[0]}.{k[1]} (worst port "
        f"{m.worst_old:,}); with lhash2 ({LHASH2_SINCE[0]}.{LHASH2_SINCE[1]}+) "
        f"~{m.per_syn_new:,.0f}"
    )
    evidence = {k2: v for k2, v in asdict(m).items() if k2 != "kernel"}
    evidence["kernel"] = f"{k[0]}.{k[1]}"
    return [catalogue_finding(ID, m.sockets, summary=summary, evidence=evidence)]
