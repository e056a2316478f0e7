"""The evidence window: the last seconds of frames kept in memory (bounded in bytes too),
written to pcapng around a trigger with the same per-packet comments as `scan --export`.

Batches from the ring own their buffers, so keeping one is keeping a reference: no copy.
Eviction is by whole batch (the oldest goes when the window holds more than `max_bytes`,
or when its newest frame is older than `before` seconds), and a write keeps only the
frames within `before` seconds of the trigger.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.writer import PcapngWriter
from netsleuth.decode import decode
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.report.export import batch_labels, finding_labels, write_row

NS = 1_000_000_000


@dataclass
class EvidenceWindow:
    before_s: float
    max_bytes: int
    batches: deque[RecordBatch] = field(default_factory=deque)
    nbytes: int = 0

    def add(self, batch: RecordBatch) -> None:
        if len(batch) == 0:
            return
        self.batches.append(batch)
        self.nbytes += int(batch.caplen.sum())
        newest = int(batch.ts_ns[-1])
        while len(self.batches) > 1 and (
            self.nbytes > self.max_bytes
            or int(self.batches[0].ts_ns[-1]) < newest - int(self.before_s * NS)
        ):
            self.nbytes -= int(self.batches.popleft().caplen.sum())


class EvidenceFile:
    """One evidence pcapng: the window at the trigger, then the frames of the next
    `after` seconds. Closed (and complete) once a frame past that arrives or the run
    ends. At most `max_bytes` of frames are written (a flood during `after` must not fill
    the disk); `truncated` says when the cap cut it."""

    def __init__(
        self, path: str, label: str, trigger_ts: int, after_s: float, max_bytes: int
    ) -> None:
        try:
            self.fh = open(path, "wb")  # noqa: SIM115 - closed by close(), on every path
        except OSError as err:
            raise InputError(path, f"cannot write the evidence: {err.strerror or err}") from err
        self.path = path
        self.label = label
        self.writer = PcapngWriter(self.fh)
        self.until = trigger_ts + int(after_s * NS)
        self.packets = 0
        self.bytes = 0
        self.max_bytes = max_bytes
        self.truncated = False
        self.open = True

    def write(
        self,
        batch: RecordBatch,
        findings: list[Finding],
        flagged_keys: dict[str, set[bytes]],
        since: int | None = None,
    ) -> None:
        """The frames of `batch` from `since` (ns) up to the window's end, each with a
        comment naming the findings (or the flagged fragment train) it belongs to."""
        ts = batch.ts_ns
        rows = ts <= self.until
        if since is not None:
            rows &= ts >= since
        if rows.any():
            labels, trains = finding_labels(findings, flagged_keys)
            named = batch_labels(batch, decode(batch), labels, trains, np.zeros(0, np.int64))
            for row in np.flatnonzero(rows):
                r = int(row)
                self.bytes += int(batch.caplen[r])
                if self.bytes > self.max_bytes:
                    self.truncated = True
                    self.close()
                    return
                frame = int(batch.frame[r])
                what = named.get(r, "context")
                write_row(self.writer, batch, r, f"{self.label} frame {frame}: {what}")
                self.packets += 1
        if len(batch) and int(ts[-1]) > self.until:
            self.close()

    def close(self) -> None:
        self.open = False
        if not self.fh.closed:
            self.fh.close()
