"""Running the vigil: one worker in this process, or N worker processes sharing the
interface through one PACKET_FANOUT_HASH group, their results merged at the end.

Fanout mode: hash. The kernel hashes each frame with the flow dissector (skb_get_hash),
which hashes an IP fragment on its addresses and protocol only, the first fragment too
(kernel commit 62230715fd24, "flow_dissector: do not dissect l4 ports for fragments",
Linux 4.20), and which enters GRE/TEB and VLAN, so every fragment of one datagram, inner or
outer, reaches the same worker and the fragment audit sees whole trains
(tests/test_live_ring.py checks it on this kernel). PACKET_FANOUT_FLAG_DEFRAG is not set:
it would reassemble the fragments before the socket and hide the evidence.

Merging, exactly: each worker numbers the frames it read 1, 2, ... in arrival order. The
report numbers them worker by worker: worker 0's frames are 1..n0, worker 1's n0+1..n0+n1,
and so on (`live.frames_by_worker` in JSON; worker k's evidence file comments each frame
with "worker k frame j", its own number). With one worker that is arrival order, the
numbering of `scan` on a capture of the interface. Verdicts do not depend on how the
workers' frames interleave: a per-packet check judges one frame, and the fragment audit and
the outer reassembly judge a datagram from its own key's fragments, all on one worker. So
the merged checks (tallies added with frame numbers shifted; the audits' disjoint keys
united) give the counts, severities and flagged packets of `scan` on the same frames; the
first 100 frame numbers a finding lists are the first in the report's numbering. Two
things are per worker: the fragment audit's bounds (MAX_OPEN datagrams and MAX_BYTES each,
so fragment.evicted can differ from one process's under a flood) and the order of evidence
datagrams (worker by worker, the first MAX_EVIDENCE kept).

The one case where keys are not disjoint: an inner fragment train carried partly in whole
tunnel packets (hashed on the inner addresses: the dissector enters GRE/TEB) and partly in
an outer datagram that was itself fragmented (its fragments hashed on the outer addresses
only). The two parts may reach different workers; the per-fragment findings stay exact,
but each worker judges its part of the datagram (incomplete on both sides); the merged
incomplete finding says how many keys two workers both flagged (split_trains). One worker
never splits anything.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, cast

from netsleuth.capture.ring import KernelStats, RingReader
from netsleuth.checks import Check, Mergeable, new_checks
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.errors import FacilityError, InputError, NetsleuthError
from netsleuth.findings import Finding
from netsleuth.live.vigil import LiveOptions, OnEvent, Vigil, WorkerResult, kernel_drops_finding
from netsleuth.scan import (
    InputResult,
    ScanResult,
    Summary,
    add_rebuilt_tunnels,
    input_findings,
    scan_result,
)
from netsleuth.signals import SIGNALS, ending_signals


@dataclass
class LiveResult:
    scan: ScanResult
    kernel: KernelStats
    workers: int
    evidence: list[dict[str, Any]] = field(default_factory=list)
    cpu_s: float = 0.0
    elapsed_s: float = 0.0
    # Where each worker's frames are in the report's numbering (merge).
    spans: list[dict[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "interface": self.scan.inputs[0].path,
            "workers": self.workers,
            "elapsed_s": round(self.elapsed_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "kernel": self.kernel.to_json(),
            "frames_by_worker": self.spans,
            "evidence": self.evidence,
        }


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """The signals that end a run (SIGINT, SIGTERM, SIGHUP) end it cleanly (final report,
    evidence closed, ring and socket released) instead of killing it; the previous
    handlers come back after."""
    flag = {"stop": False}

    def handler(_sig: int, _frame: object) -> None:
        flag["stop"] = True

    old = {s: signal.signal(s, handler) for s in ending_signals()}
    try:
        yield lambda: flag["stop"]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_live(
    opts: LiveOptions,
    on_event: OnEvent,
    *,
    workers: int = 1,
    stop: Callable[[], bool] = lambda: False,
    on_ready: Callable[[], None] = lambda: None,
) -> LiveResult:
    start = time.monotonic()
    if workers == 1:
        with RingReader(opts.ifname, opts.ring) as reader:
            on_ready()
            results = [Vigil(opts, on_event).run(reader, stop)]
    else:
        results = _run_workers(opts, on_event, workers, stop, on_ready)
    return merge(opts.ifname, results, workers, time.monotonic() - start)


def _run_workers(  # noqa: PLR0912 -- one loop over the workers' queue: a branch per message kind
    opts: LiveOptions,
    on_event: OnEvent,
    n: int,
    stop: Callable[[], bool],
    on_ready: Callable[[], None],
) -> list[WorkerResult]:
    _precheck(opts.ifname)
    group = os.getpid() & 0xFFFF  # fanout ids are per network namespace: ours by pid
    ring = replace(opts.ring, fanout_group=group)
    ctx = mp.get_context("fork")
    q: Any = ctx.Queue()
    halt = ctx.Event()
    procs = [
        ctx.Process(target=_worker, args=(replace(opts, ring=ring), w, n, q, halt), daemon=True)
        for w in range(n)
    ]
    for p in procs:
        p.start()
    results: dict[int, WorkerResult] = {}
    error: tuple[str, int] | None = None
    ready = 0
    try:
        while len(results) < n and error is None:
            if stop():
                halt.set()
            try:
                kind, w, payload = q.get(timeout=0.2)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and q.empty():
                    error = ("a worker died without a result", 1)
                continue
            if kind == "event":
                on_event(payload)
            elif kind == "ready":
                ready += 1
                if ready == n:
                    on_ready()
            elif kind == "done":
                results[w] = payload
            else:
                error = payload
    finally:
        halt.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
    if error is not None:
        err = NetsleuthError(error[0])
        err.exit_code = error[1]
        raise err
    return [results[w] for w in range(n)]


def _worker(opts: LiveOptions, w: int, n: int, q: Any, halt: Any) -> None:
    # Ctrl-C and a hangup reach the whole process group: the parent decides when workers
    # stop (halt).
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    try:
        with RingReader(opts.ifname, opts.ring) as reader:
            q.put(("ready", w, None))
            vigil = Vigil(opts, lambda ev: q.put(("event", w, ev)), worker=w, workers=n)
            q.put(("done", w, vigil.run(reader, halt.is_set)))
    except NetsleuthError as err:
        q.put(("error", w, (str(err), err.exit_code)))


def _precheck(ifname: str) -> None:
    if os.geteuid() != 0:
        raise FacilityError("scan --live needs root (CAP_NET_RAW): run it with sudo")
    try:
        socket.if_nametoindex(ifname)
    except OSError:
        raise InputError(ifname, "no such network interface (see `ip link`)") from None


def merge(ifname: str, results: list[WorkerResult], workers: int, elapsed: float) -> LiveResult:
    """The workers' states as one report, exactly (module docstring): worker k's frame j
    is the report's frame `first[k] + j - 1`, first[k] being 1 + the frames of workers
    0..k-1."""
    inp = InputResult(ifname, format="live")
    summary = Summary()
    kernel = KernelStats()
    checks = new_checks()
    evidence: list[dict[str, Any]] = []
    spans: list[dict[str, int]] = []
    offset = 0
    split: Counter[str] = Counter()
    for w, r in enumerate(results):
        inp.merge(r.inp)
        inp.error = inp.error or r.inp.error
        summary.merge(r.summary)
        split.update(split_trains(checks, r.checks))
        merge_checks(checks, r.checks, offset)
        kernel.add(r.kernel)
        evidence.extend(r.evidence)
        spans.append({"worker": w, "first_frame": offset + 1, "frames": r.inp.packets})
        offset += r.inp.packets
    inp.format = "live"
    add_rebuilt_tunnels(summary, checks)  # as scan_one adds them
    findings = [_say_split(f, split) for f in input_findings(inp, checks, ifname)]
    if kernel.drops:
        findings.append(replace(kernel_drops_finding(kernel), input=ifname))
    return LiveResult(
        scan_result([inp], summary, findings),
        kernel,
        workers,
        evidence,
        sum(r.cpu_s for r in results),
        elapsed,
        spans,
    )


INCOMPLETE = ("ipv4.fragment.incomplete", "ipv6.fragment.incomplete")


def split_trains(merged: list[Check], part: list[Check]) -> Counter[str]:
    """Datagram keys a worker and an earlier one both flagged incomplete: one train the
    hash split between them (module docstring), each side judged alone. A lower bound:
    the audit keeps at most MAX_FLAGGED_KEYS keys per finding id."""
    out: Counter[str] = Counter()
    audits = [c for c in (*merged, *part) if isinstance(c, FragmentAudit)]
    if len(audits) == 2:
        mine, theirs = audits
        for fid in INCOMPLETE:
            both = mine.flagged_keys.get(fid, set()) & theirs.flagged_keys.get(fid, set())
            if both:
                out[fid] = len(both)
    return out


def _say_split(f: Finding, split: Counter[str]) -> Finding:
    if f.id not in split:
        return f
    note = (
        f"{split[f.id]} datagram(s) had fragments on two fanout workers (carried partly in "
        "outer fragments, partly in whole tunnel packets, which the kernel hashes "
        "differently): each part was judged alone; --workers 1 keeps them together"
    )
    return replace(f, evidence={**f.evidence, "split_between_workers": split[f.id], "note": note})


def merge_checks(into: list[Check], part: list[Check], frame_offset: int) -> None:
    """One worker's finished checks into the merged ones (both in new_checks() order).
    The per-packet checks are tallies: a merge adds counts and shifts frame numbers. The
    fragment audit and the outer reassembly follow datagrams, and PACKET_FANOUT_HASH gave
    each datagram's fragments to one worker, so their parts hold disjoint keys and merge
    as a union (merge_disjoint)."""
    for mine, theirs in zip(into, part, strict=True):
        assert type(mine) is type(theirs)
        if isinstance(mine, FragmentAudit):
            mine.merge_disjoint(cast(FragmentAudit, theirs), frame_offset)
        elif isinstance(mine, TunnelReassembly):
            mine.merge_disjoint(cast(TunnelReassembly, theirs), frame_offset)
        else:
            cast(Mergeable, mine).merge(theirs, frame_offset)
