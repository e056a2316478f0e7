"""Running the vigil: one worker in this process, or N worker processes sharing the
interface through one PACKET_FANOUT_HASH group, their results merged at the end.

Fanout mode: hash. The kernel hashes each frame with the flow dissector (skb_get_hash),
which hashes an IP fragment on its addresses and protocol only, the first fragment too
(kernel commit 62230715fd24, "flow_dissector: do not dissect l4 ports for fragments",
Linux 4.20), and which enters GRE/TEB and VLAN, so every fragment of one datagram, inner or
outer, reaches the same worker and the fragment audit sees whole trains
(tests/test_live_ring.py checks it on this kernel). PACKET_FANOUT_FLAG_DEFRAG is not set:
it would reassemble the fragments before the socket and hide the evidence.

Merging: each worker numbers its own frames. A finding seen by one worker is kept as it
is; one seen by several is summed (count, evidence.workers) with the packets of the worker
that saw most. The exact merge of the checks' state is issue 14's.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from netsleuth.capture.ring import KernelStats, RingReader
from netsleuth.errors import FacilityError, InputError, NetsleuthError
from netsleuth.live.vigil import LiveOptions, OnEvent, Vigil, WorkerResult
from netsleuth.model import Finding
from netsleuth.scan import InputResult, ScanResult, Summary


@dataclass
class LiveResult:
    scan: ScanResult
    kernel: KernelStats
    workers: int
    evidence: list[dict[str, Any]] = field(default_factory=list)
    cpu_s: float = 0.0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "interface": self.scan.inputs[0].path,
            "workers": self.workers,
            "elapsed_s": round(self.elapsed_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "kernel": self.kernel.to_json(),
            "evidence": self.evidence,
        }


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM end the run cleanly (final report, evidence closed, ring and
    socket released) instead of killing it; the previous handlers come back after."""
    flag = {"stop": False}

    def handler(_sig: int, _frame: object) -> None:
        flag["stop"] = True

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
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
    # Ctrl-C reaches the whole process group: the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
    inp = InputResult(ifname, format="live")
    summary = Summary()
    kernel = KernelStats()
    evidence: list[dict[str, Any]] = []
    for r in results:
        inp.packets += r.inp.packets
        inp.bytes += r.inp.bytes
        inp.linktypes.update(r.inp.linktypes)
        inp.error = inp.error or r.inp.error
        for name in ("link", "l3", "tunnels"):
            getattr(summary, name).update(getattr(r.summary, name))
        summary.vlan_tagged += r.summary.vlan_tagged
        summary.mpls += r.summary.mpls
        summary.fragments += r.summary.fragments
        kernel.add(r.kernel)
        evidence.extend(r.evidence)
    findings = merge_findings([r.findings for r in results])
    findings.sort(key=lambda f: (-f.severity, f.input or "", f.id, f.layer or ""))
    return LiveResult(
        ScanResult([inp], summary, findings),
        kernel,
        workers,
        evidence,
        sum(r.cpu_s for r in results),
        elapsed,
    )


def merge_findings(per_worker: list[list[Finding]]) -> list[Finding]:
    if len(per_worker) == 1:
        return list(per_worker[0])
    groups: dict[tuple[str, str | None], list[tuple[int, Finding]]] = {}
    for w, findings in enumerate(per_worker):
        for f in findings:
            groups.setdefault((f.id, f.layer), []).append((w, f))
    out = []
    for hits in groups.values():
        if len(hits) == 1:
            out.append(hits[0][1])
            continue
        _w, top = max(hits, key=lambda wf: wf[1].count)
        out.append(
            replace(
                top,
                count=sum(f.count for _, f in hits),
                evidence={**top.evidence, "workers": {str(w): f.count for w, f in hits}},
            )
        )
    return out
