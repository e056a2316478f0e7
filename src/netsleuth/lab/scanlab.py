"""`netsleuth scan CAPTURE --lab`: the frames of each finding (a flagged datagram's whole
fragment train) replayed on this kernel, and the kernel's verdict put beside the
catalogue's claim about Linux, saying where the two disagree.

Each input's frames are replayed once, in capture order (fragment trains stay in order),
at most DEFAULT_LIMIT of them; each finding then reads the verdicts of its own frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from netsleuth.arrays import member
from netsleuth.capture import open_capture
from netsleuth.checks.fragments import fragment_keys
from netsleuth.checks.layers import ip_layers
from netsleuth.decode import decode
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.lab.replay import DEFAULT_LIMIT, LabReport, Options, Record, run
from netsleuth.lab.verdict import Result
from netsleuth.scan import InputResult, ScanResult


@dataclass(frozen=True, slots=True)
class Claim:
    verdict: str  # what the catalogue says a Linux host does with these frames
    text: str


# The finding ids whose catalogue explanation (findings/catalogue.py) states what Linux does
# with the packet; tests/test_lab_kernel.py replays one of each and expects agreement.
DROPPED = "dropped"
CLAIMS: dict[str, Claim] = {
    "l2.ieee8023_llc": Claim(DROPPED, "a Linux host that is not a bridge drops 802.3/LLC frames"),
    "l2.unknown_ethertype": Claim(DROPPED, "a Linux host without a handler drops them"),
    "ipv4.bad_header_length": Claim(DROPPED, "Linux drops IHL < 5 in ip_rcv_core"),
    "ipv4.bad_total_length": Claim(DROPPED, "Linux drops a bad total length in ip_rcv_core"),
    "ipv4.bad_checksum": Claim(DROPPED, "Linux drops a bad header checksum in ip_rcv_core"),
    "udp.bad_length": Claim(DROPPED, "Linux drops a bad UDP length (Udp InErrors)"),
    "ipv4.fragment.overlap": Claim(DROPPED, "Linux 4.19+ discards the whole datagram"),
    "ipv4.fragment.overlap_conflict": Claim(DROPPED, "modern Linux discards the datagram"),
    "ipv6.fragment.overlap": Claim(DROPPED, "Linux discards the whole datagram (RFC 5722)"),
}
# Drops that happen before the inner packet of a tunnel is looked at: an inner finding whose
# frames die so says nothing about the inner packet on this kernel.
OUTER_ONLY = frozenset({"OTHERHOST", "IP_NOPROTO", "UNHANDLED_PROTO"})


def finding_frames(inp: InputResult, findings: list[Finding]) -> dict[str, set[int]]:
    """Finding id -> its frames: the listed packets plus every fragment of a flagged
    datagram (one decode pass over the capture)."""
    out: dict[str, set[int]] = {f.id: set(f.packets) for f in findings}
    keys: dict[bytes, list[str]] = {}
    for f in findings:
        for k in inp.flagged_keys.get(f.id, ()):
            keys.setdefault(k, []).append(f.id)
    if not keys:
        return out
    for batch in open_capture(inp.path).batches():
        t = decode(batch)
        for name, layer, present in ip_layers(t):
            rows = np.flatnonzero(present & layer.is_frag)
            if rows.shape[0] == 0:
                continue
            for i, k in zip(rows, fragment_keys(t, name, layer, rows), strict=True):
                for fid in keys.get(k.tobytes(), ()):
                    out[fid].add(int(batch.frame[i]))
    return out


def _records(path: str, wanted: set[int]) -> list[Record]:
    out = []
    for batch in open_capture(path).batches():
        for i in np.flatnonzero(member(batch.frame, np.fromiter(wanted, dtype=np.int64))):
            out.append(Record(int(batch.frame[i]), int(batch.linktype[i]), batch.packet(int(i))))
            if len(out) >= DEFAULT_LIMIT:
                return out
    return out


def judge_finding(f: Finding, results: list[Result], kernel: str) -> dict[str, Any]:
    """The kernel's verdicts for one finding's frames, and whether they bear out the claim."""
    verdicts = Counter(r.verdict for r in results)
    drops = Counter((r.location, r.reason) for r in results if r.verdict == "dropped")
    out: dict[str, Any] = {
        "kernel": kernel,
        "frames": [r.frame for r in results],
        "verdicts": dict(verdicts),
        "drops": [
            {"location": loc, "reason": reason, "frames": n} for (loc, reason), n in drops.items()
        ],
    }
    outer_first = f.layer == "inner" and drops and all(r in OUTER_ONLY for _, r in drops)
    if outer_first:
        out["why"] = "the outer packet died first: this kernel never saw the inner one"
    claim = CLAIMS.get(f.id)
    if claim is None:
        return out
    out["claim"] = claim.text
    if outer_first:
        out["agrees"] = None
    elif claim.verdict == DROPPED:
        out["agrees"] = bool(drops) and not verdicts.get("delivered")
    return out


def _sentence(lab: dict[str, Any]) -> str:
    parts = [f"{n} {v}" for v, n in lab["verdicts"].items() if v != "dropped"]
    parts += [
        f"{d['frames']} dropped at {d['location']} ({d['reason'] or 'no reason'})"
        for d in lab["drops"]
    ]
    text = f"This kernel ({lab['kernel']}), frame by frame: {', '.join(parts)}"
    if "agrees" not in lab:
        return text + (f" ({lab['why']})." if "why" in lab else ".")
    if lab["agrees"] is None:
        return f"{text}: untested ({lab['why']})."
    if lab["agrees"]:
        return f"{text}: agrees with the catalogue ({lab['claim']})."
    return f"{text}: DISAGREES with the catalogue, which says {lab['claim']}."


def annotate(result: ScanResult, opts: Options | None = None) -> list[str]:
    """Replay each input's finding frames and add the verdicts to the findings (in place);
    returns the lab's notes."""
    notes: list[str] = []
    single = len(result.inputs) == 1
    for inp in result.inputs:
        if inp.error is not None:
            continue
        if inp.path == "-":
            raise InputError("-", "--lab reads its input twice: give capture files, not stdin")
        mine = [f for f in result.findings if f.packets and (single or f.input == inp.path)]
        if not mine:
            continue
        frames = finding_frames(inp, mine)
        wanted = set().union(*frames.values())
        report = run(_records(inp.path, wanted), opts or Options())
        notes += report.notes
        _apply(result, mine, frames, report)
    return notes


def _apply(
    result: ScanResult, mine: list[Finding], frames: dict[str, set[int]], report: LabReport
) -> None:
    by_frame = {r.frame: r for r in report.results}
    for i, f in enumerate(result.findings):
        if f not in mine:
            continue
        got = [by_frame[n] for n in sorted(frames[f.id]) if n in by_frame]
        if not got:
            continue
        lab = judge_finding(f, got, report.kernel)
        result.findings[i] = replace(
            f,
            explanation=f"{f.explanation} {_sentence(lab)}",
            evidence={**f.evidence, "lab": lab},
        )
