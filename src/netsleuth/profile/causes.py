"""The causes table (data/profile_causes.json, the one source) and the profile.* rules.

profile.softirq_saturated: a CPU spends at least half of its samples in softirq (the same
50% that makes doctor's host.softirq_hotspot, host/doctor_rules.py HOT_SOFTIRQ_PCT).
profile.hot_function: a known cause is on the stack of at least 20% of a CPU's NET_RX
samples. Both need enough samples to mean something (MIN_SAMPLES: half a second of one CPU
at 99 Hz); below that a lone stack is noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING

from netsleuth.findings import Finding, Severity
from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.host.doctor_rules import HOT_SOFTIRQ_PCT

if TYPE_CHECKING:
    from netsleuth.profile.stacks import CpuProfile

MIN_SAMPLES = 50
HOT_SHARE = 0.2
SATURATED = HOT_SOFTIRQ_PCT / 100


@dataclass(frozen=True, slots=True)
class Cause:
    id: str
    functions: frozenset[str]
    prefixes: tuple[str, ...]  # names given as "prefix*"
    under: str | None  # the cause needs this function above (rootward of) the match
    severity: Severity
    title: str
    explanation: str
    next: str
    refs: tuple[str, ...]
    source: str

    def names(self, function: str) -> bool:
        return function in self.functions or function.startswith(self.prefixes or ("\0",))

    def matches(self, path: tuple[str, ...]) -> bool:
        """A stack part, leaf first (leaf .. net_rx_action), shows this cause."""
        for i, fn in enumerate(path):
            if self.names(fn) and (self.under is None or self.under in path[i + 1 :]):
                return True
        return False


@cache
def causes() -> tuple[Cause, ...]:
    from importlib import resources

    text = resources.files("netsleuth").joinpath("data/profile_causes.json").read_text()
    out = []
    for c in json.loads(text)["causes"]:
        names = c["functions"]
        out.append(
            Cause(
                c["id"],
                frozenset(n for n in names if not n.endswith("*")),
                tuple(n[:-1] for n in names if n.endswith("*")),
                c.get("under"),
                Severity.parse(c["severity"]),
                c["title"],
                c["explanation"],
                c["next"],
                tuple(c["refs"]),
                c["source"],
            )
        )
    return tuple(out)


def judge(cpus: list[CpuProfile]) -> list[Finding]:
    from netsleuth.profile.contexts import NET_RX, SOFTIRQ_OTHER

    out: list[Finding] = []
    by_id = {c.id: c for c in causes()}
    for p in cpus:
        if p.samples < MIN_SAMPLES:
            continue
        soft = p.contexts[NET_RX] + p.contexts[SOFTIRQ_OTHER]
        if soft / p.samples >= SATURATED:
            out.append(
                catalogue_finding(
                    "profile.softirq_saturated",
                    soft,
                    summary=f"CPU {p.cpu} spent {soft / p.samples:.0%} of its samples in "
                    f"softirq (NET_RX {p.share(NET_RX):.0%})",
                    evidence={
                        "cpu": p.cpu,
                        "samples": p.samples,
                        "softirq_share": round(soft / p.samples, 4),
                        "net_rx_share": round(p.share(NET_RX), 4),
                        "next": "the hot NET_RX functions of this CPU (profile); netsleuth "
                        "doctor for the queue IRQ and RPS spread that brings the load here",
                    },
                )
            )
        rx = p.contexts[NET_RX]
        if rx < MIN_SAMPLES:
            continue
        for cid, n in sorted(p.causes.items(), key=lambda x: -x[1]):
            if n / rx >= HOT_SHARE:
                out.append(_hot(p, by_id[cid], n, rx))
    return out


def _hot(p: CpuProfile, cause: Cause, n: int, rx: int) -> Finding:
    seen = [r.function for r in p.net_rx_top if r.cause == cause.id]
    f = catalogue_finding(
        "profile.hot_function",
        n,
        summary=f"{cause.title} is on {n / rx:.0%} of CPU {p.cpu}'s NET_RX samples"
        + (f" ({', '.join(seen[:3])})" if seen else ""),
        evidence={
            "cpu": p.cpu,
            "cause": cause.id,
            "functions": seen,
            "share_of_net_rx": round(n / rx, 4),
            "net_rx_samples": rx,
            "next": cause.next,
            "source": cause.source,
        },
    )
    return replace(f, severity=cause.severity, explanation=cause.explanation, refs=cause.refs)
