"""Samples -> counted stacks -> per-CPU context shares and the NET_RX hot functions (pure).

Samples are counted by (cpu, pid, tid, user mode, kernel addresses) while the run lasts, so
memory grows with the distinct stacks, not with time; names are resolved once at the end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from netsleuth.profile.abi import Sample, kernel_frames, user_mode
from netsleuth.profile.causes import Cause, causes
from netsleuth.profile.contexts import CONTEXTS, NET_RX, context_of

Key = tuple[int, int, int, bool, tuple[int, ...]]  # cpu, pid, tid, user mode, kernel ips
TOP = 15  # NET_RX functions kept per CPU
# Distinct keys kept with their pid and tid. Past this, samples of tasks not yet seen count
# under pid -1: a host spawning threads without end cannot grow the table beyond its
# distinct kernel stacks.
MAX_KEYS = 100_000


def count(samples: Iterable[Sample], into: Counter[Key], max_keys: int = MAX_KEYS) -> None:
    for s in samples:
        key = (s.cpu, s.pid, s.tid, user_mode(s), kernel_frames(s.chain))
        if s.pid != 0 and len(into) >= max_keys and key not in into:
            key = (s.cpu, -1, -1, key[3], key[4])
        into[key] += 1


@dataclass(frozen=True, slots=True)
class Stack:
    cpu: int
    pid: int
    tid: int
    context: str
    frames: tuple[str, ...]  # function names, leaf first
    boundary: int  # index of the frame that decided the context, -1 if none
    count: int

    @property
    def net_rx_path(self) -> tuple[str, ...]:
        """Leaf up to and including net_rx_action; empty outside NET_RX."""
        return self.frames[: self.boundary + 1] if self.context == NET_RX else ()


def symbolise(counts: Counter[Key], names: Callable[[list[int]], dict[int, str]]) -> list[Stack]:
    """Stacks with names. `names` maps each address to a function name; it is given the
    leaf addresses as they are and the callers' return addresses minus one, because a
    return address can point past the end of its function (a call to a noreturn
    function is the last instruction)."""
    wanted: set[int] = set()
    for key in counts:
        ips = key[4]
        if ips:
            wanted.add(ips[0])
            wanted.update(ip - 1 for ip in ips[1:])
    table = names(sorted(wanted))
    out = []
    for (cpu, pid, tid, user, ips), n in counts.items():
        frames = tuple(table[ip if i == 0 else ip - 1] for i, ip in enumerate(ips))
        ctx, at = context_of(frames, user=user, idle_task=pid == 0)
        out.append(Stack(cpu, pid, tid, ctx, frames, at, n))
    out.sort(key=lambda s: (s.cpu, -s.count, s.frames))
    return out


@dataclass(frozen=True, slots=True)
class FunctionRow:
    function: str
    self_samples: int  # samples with this function as the leaf
    inclusive: int  # samples with it anywhere between the leaf and net_rx_action
    callers: tuple[str, ...]  # its most frequent callers, nearest first, to net_rx_action
    cause: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "self": self.self_samples,
            "inclusive": self.inclusive,
            "callers": list(self.callers),
            "cause": self.cause,
        }


@dataclass(frozen=True)
class CpuProfile:
    cpu: int
    samples: int
    contexts: dict[str, int]  # samples per context, every context present
    net_rx_top: tuple[FunctionRow, ...]
    causes: dict[str, int] = field(default_factory=dict)  # NET_RX samples per cause id

    def share(self, context: str) -> float:
        return self.contexts[context] / self.samples if self.samples else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "samples": self.samples,
            "contexts": {c: round(self.share(c), 4) for c in CONTEXTS},
            "net_rx_top": [r.to_json() for r in self.net_rx_top],
        }


def per_cpu(stacks: list[Stack], cpus: Iterable[int], top: int = TOP) -> list[CpuProfile]:
    """One CpuProfile per requested CPU (those without samples too)."""
    table = causes()
    out = []
    for cpu in sorted(set(cpus)):
        mine = [s for s in stacks if s.cpu == cpu]
        contexts = dict.fromkeys(CONTEXTS, 0)
        for s in mine:
            contexts[s.context] += s.count
        rx = [s for s in mine if s.context == NET_RX]
        out.append(
            CpuProfile(
                cpu,
                sum(contexts.values()),
                contexts,
                _top_functions(rx, table, top),
                {
                    c.id: n
                    for c in table
                    if (n := sum(s.count for s in rx if c.matches(s.net_rx_path)))
                },
            )
        )
    return out


def _top_functions(rx: list[Stack], table: tuple[Cause, ...], top: int) -> tuple[FunctionRow, ...]:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    paths: dict[str, Counter[tuple[str, ...]]] = {}
    for s in rx:
        path = s.net_rx_path
        own[path[0]] += s.count
        for i, fn in enumerate(path):
            if fn in path[:i]:
                continue  # recursion: once per sample
            incl[fn] += s.count
            paths.setdefault(fn, Counter())[path[i + 1 :]] += s.count
    ranked = sorted(incl, key=lambda f: (-incl[f], -own[f], f))[:top]
    rows = []
    for fn in ranked:
        callers = paths[fn].most_common(1)[0][0]
        cause = next((c.id for c in table if c.matches((fn, *callers))), None)
        rows.append(FunctionRow(fn, own[fn], incl[fn], callers, cause))
    return tuple(rows)


def folded(stacks: list[Stack]) -> list[str]:
    """Brendan Gregg's folded format (flamegraph.pl, speedscope): frames root first,
    separated by ';', then a space and the count. The CPU and the context are the two
    outermost frames, so a flame graph splits by them first."""
    lines: Counter[str] = Counter()
    for s in stacks:
        frames = [f"[cpu{s.cpu}]", f"[{s.context}]", *reversed(s.frames)]
        lines[";".join(f.replace(";", ":").replace(" ", "_") for f in frames)] += s.count
    return [f"{k} {v}" for k, v in sorted(lines.items())]
