"""One live worker: ring -> RecordBatch -> decode -> the scan checks, with findings
reported when first seen, a summary every interval and the evidence window.

The checks are those of `scan` on files (checks.new_checks, observe_all, collect), so the
final report is what `scan` gives on the same frames. While the run goes on, findings are
peeked without closing anything: collect() ends the fragment audit (it finishes every open
datagram as never completed), which mid-run would report trains still arriving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netsleuth.arrays import member
from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.ring import (
    MAX_BLOCKS_PER_BATCH,
    InterfaceDownError,
    KernelStats,
    RingConfig,
    RingReader,
)
from netsleuth.checks import Check, new_checks, observe_all
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.decode import DEFAULT_TUNNEL_DEPTH, decode
from netsleuth.findings import Finding, Severity
from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.findings.select import select
from netsleuth.live.window import NO_ROTATION, NS, EvidenceFile, EvidenceWindow, Part, Rotation
from netsleuth.scan import InputResult, Summary

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


@dataclass(frozen=True, slots=True)
class LiveOptions:
    ifname: str
    duration: float | None = None  # None: until stopped (SIGINT, SIGTERM, SIGHUP)
    interval: float = 1.0
    trigger: Severity = Severity.CRITICAL
    only: tuple[str, ...] = ()  # --only: the findings that may trigger, as shown
    export: str | None = None
    before: float = 5.0
    after: float = 2.0
    rotation: Rotation | None = None  # None: one evidence file, at the first trigger
    window_bytes: int = 64 << 20
    tunnel_depth: int = DEFAULT_TUNNEL_DEPTH
    ring: RingConfig = field(default_factory=RingConfig)

    def evidence_path(self, n: int, worker: int, workers: int) -> str:
        """FILE.pcapng, or FILE-N.pcapng with --rotate; -wK before that per worker."""
        rotate = self.rotation is not None
        assert self.export is not None
        stem, dot, ext = self.export.rpartition(".")
        if not dot:
            stem, ext = self.export, "pcapng"
        if workers > 1:
            stem += f"-w{worker}"
        if rotate:
            stem += f"-{n}"
        return f"{stem}.{ext}" if (workers > 1 or rotate) else self.export


@dataclass
class WorkerResult:
    """One worker's state at the end, finished (no open datagram): live/run.py merges
    the workers' states into one report."""

    inp: InputResult
    summary: Summary
    checks: list[Check]
    kernel: KernelStats
    evidence: list[dict[str, Any]] = field(default_factory=list)
    cpu_s: float = 0.0


def peek(checks: list[Check]) -> list[Finding]:
    """The findings so far, without finishing the fragment audit's open datagrams."""
    out: list[Finding] = []
    for check in checks:
        if isinstance(check, FragmentAudit):
            ev = {fid: {"datagrams": e} for fid, e in check.evidence.items()}
            out.extend(check.tally.findings(ev))
        else:
            out.extend(check.findings())
    return out


def flagged_keys(checks: list[Check]) -> dict[str, set[bytes]]:
    for check in checks:
        if isinstance(check, FragmentAudit):
            return check.flagged_keys
    return {}


class Vigil:
    def __init__(
        self, opts: LiveOptions, on_event: OnEvent, *, worker: int = 0, workers: int = 1
    ) -> None:
        self.opts = opts
        self.emit = on_event
        self.worker = worker
        self.workers = workers
        self.checks = new_checks()
        self.summary = Summary()
        self.inp = InputResult(opts.ifname, format="live")
        self.seen: dict[tuple[str, str | None], int] = {}
        self.window = EvidenceWindow(opts.before, opts.window_bytes) if opts.export else None
        self.current: EvidenceFile | None = None
        self.files: list[dict[str, Any]] = []  # every evidence file closed, in order
        self.triggers = 0
        self.opened = 0  # evidence files opened (their numbers with --rotate)
        self.kept: deque[str] = deque()  # with --rotate: the files on disk, oldest first
        self.last_ts = 0

    def run(self, reader: RingReader, stop: Callable[[], bool]) -> WorkerResult:
        opts = self.opts
        start = time.monotonic()
        cpu0 = time.process_time()
        tick_at, tick_packets = start + opts.interval, 0
        try:
            while not stop() and (
                opts.duration is None or time.monotonic() - start < opts.duration
            ):
                batch = reader.read_ready()
                if batch is None:
                    reader.wait(50)
                else:
                    self.batch(batch)
                now = time.monotonic()
                if now >= tick_at:
                    span = now - tick_at + opts.interval
                    self.tick(reader, now - start, self.inp.packets - tick_packets, span)
                    tick_at, tick_packets = now + opts.interval, self.inp.packets
            self._drain(reader)
        except InterfaceDownError as err:
            self.inp.error = str(err)  # the report covers what was read before
        finally:
            self.end_evidence()
        reader.read_stats()
        for check in self.checks:
            if isinstance(check, FragmentAudit | TunnelReassembly):
                check.finish()
        return WorkerResult(
            self.inp,
            self.summary,
            self.checks,
            reader.totals,
            self.files,
            time.process_time() - cpu0,
        )

    def _drain(self, reader: RingReader) -> None:
        """What the ring held when the run ended (--duration, a signal), read before the
        report, so that the frames the socket counted are the frames checked: the partly
        filled block once its retire timer has handed it over, and at most one pass over
        the ring's blocks, so a busy link cannot keep the run going. Without it a run
        stopped past its --duration (SIGSTOP, a starved host) read nothing of what came."""
        # Twice the retire timeout and a margin: the timer runs in a softirq that a loaded
        # host may run late (helper-49).
        time.sleep((2 * reader.config.retire_ms + 10) / 1000)
        for _ in range(reader.config.blocks // MAX_BLOCKS_PER_BATCH + 1):
            batch = reader.read_ready()
            if batch is None:
                return
            self.batch(batch)

    def batch(self, batch: RecordBatch) -> None:
        if len(batch) == 0:
            return
        t = decode(batch, tunnel_depth=self.opts.tunnel_depth)
        self.inp.packets += len(batch)
        self.inp.bytes += int(batch.wirelen.sum())
        self.inp.linktypes[int(batch.linktype[0])] += len(batch)
        self.last_ts = int(batch.ts_ns[-1])
        self.summary.observe(t)
        observe_all(self.checks, t)
        if self.window is not None:
            self.window.add(batch)
        now = peek(self.checks)
        grown = self.news(now)
        if self.window is not None:
            self.evidence(batch, now, grown)

    def news(self, now: list[Finding]) -> list[Finding]:
        """Emit the findings seen for the first time; return those whose count grew."""
        grown = []
        for f in now:
            key = (f.id, f.layer)
            before = self.seen.get(key)
            if before is None:
                labelled = _labelled(f, self.opts.ifname)
                self.emit({"event": "finding", "worker": self.worker, "finding": labelled})
            if before is None or f.count > before:
                grown.append(f)
            self.seen[key] = f.count
        return grown

    def evidence(self, batch: RecordBatch, now: list[Finding], grown: list[Finding]) -> None:
        if self.current is not None:
            self.current.write(batch, now, flagged_keys(self.checks))
            if self.current.open:
                return
            self.current = None  # the batch that closed it may hold the next trigger
        hits = select(grown, only=self.opts.only, min_severity=self.opts.trigger)
        if not hits or (self.opts.rotation is None and self.triggers):
            return
        assert self.window is not None
        self.triggers += 1
        in_batch = member(batch.frame, [p for f in hits for p in f.packets])
        trig_ts = int(batch.ts_ns[in_batch].max()) if in_batch.any() else int(batch.ts_ns[-1])
        # Frames are numbered per worker: the comments say whose (live/run.py: merge).
        label = self.opts.ifname + (f" worker {self.worker}" if self.workers > 1 else "")
        self.current = EvidenceFile(
            self.next_path,
            label,
            trig_ts,
            self.opts.after,
            self.opts.window_bytes,
            trigger=sorted({f.id for f in hits}),
            rotation=self.opts.rotation or NO_ROTATION,
            on_close=self.closed,
        )
        since = trig_ts - int(self.opts.before * NS)
        for b in self.window.batches:
            self.current.write(b, now, flagged_keys(self.checks), since=since)
        if not self.current.open:
            self.current = None

    def next_path(self) -> str:
        """The next evidence file's name; with --rotate, the oldest file goes when
        --rotate-files are kept already."""
        self.opened += 1
        path = self.opts.evidence_path(self.opened, self.worker, self.workers)
        rot = self.opts.rotation
        if rot is not None:
            while len(self.kept) >= rot.max_files:
                old = self.kept.popleft()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(old)
                # Its entry goes too: what a long vigil keeps stays bounded by the files.
                self.files = [info for info in self.files if info["path"] != old]
                self.emit({"event": "evidence_removed", "worker": self.worker, "path": old})
            self.kept.append(path)
        return path

    def closed(self, part: Part) -> None:
        info = part.info(self.opts.window_bytes)
        self.files.append(info)
        self.emit({"event": "evidence", "worker": self.worker, **info})

    def end_evidence(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None

    def tick(self, reader: RingReader, elapsed: float, packets: int, span: float) -> None:
        if self.current is not None and time.time_ns() > self.current.until:
            self.end_evidence()  # quiet link: --after has passed without a frame
        st = reader.read_stats()
        self.emit(
            {
                "event": "summary",
                "worker": self.worker,
                "elapsed": round(elapsed, 3),
                "packets": self.inp.packets,
                "bytes": self.inp.bytes,
                "rate_pps": round(packets / span, 1) if span > 0 else 0.0,
                "kernel": {"interval": st.to_json(), "total": reader.totals.to_json()},
                "counts": {
                    f"{fid} [{layer}]" if layer else fid: n for (fid, layer), n in self.seen.items()
                },
                "last_frame_ns": self.last_ts,
            }
        )


def kernel_drops_finding(st: KernelStats) -> Finding:
    return catalogue_finding(
        "capture.kernel_drops",
        st.drops,
        summary=f"the kernel dropped {st.drops:,} of {st.packets:,} frames before they were "
        f"read (ring frozen full {st.freeze_q:,} times): they were not scanned",
        evidence={"kernel": st.to_json()},
    )


def _labelled(f: Finding, label: str) -> Finding:
    return dataclasses.replace(f, input=label)
