"""The evidence window: the last seconds of frames kept in memory (bounded in bytes too),
written to pcapng around a trigger with the same per-packet comments as `scan --export`.

Batches from the ring own their buffers, so keeping one is keeping a reference: no copy.
Eviction is by whole batch (the oldest goes when the window holds more than `max_bytes`,
or when its newest frame is older than `before` seconds), and a write keeps only the
frames within `before` seconds of the trigger.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class Rotation:
    """`--rotate SIZE|SECONDS` and `--rotate-files N` (tcpdump's -C, -G and -W for the
    evidence only): each trigger starts a new file; a file is closed before the frame that
    would follow once it holds SIZE bytes or more (as tcpdump -C checks, so a file passes
    SIZE by at most one frame), or before the first frame SECONDS or more after its first
    frame (packet time), and the evidence goes on in the next file. At most `max_files`
    files are kept: opening one more removes the oldest, as tcpdump -W does."""

    max_bytes: int = 0  # 0: no size bound
    max_seconds: float = 0.0  # 0: no time bound
    max_files: int = 10

    def full(self, size: int, first_ts: int, ts: int) -> bool:
        return bool(
            (self.max_bytes and size >= self.max_bytes)
            or (self.max_seconds and ts - first_ts >= int(self.max_seconds * NS))
        )


NO_ROTATION = Rotation()


@dataclass
class Part:
    """One evidence file: where, how much, and the trigger it holds frames of."""

    path: str
    trigger: list[str]
    part: int  # 1 for the file a trigger opened, 2... for those its evidence went on in
    packets: int = 0
    first_ts: int = 0
    truncated: bool = False

    def info(self, cap: int) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "packets": self.packets, "trigger": self.trigger}
        if self.part > 1:
            out["part"] = self.part
        if self.truncated:
            out["truncated"] = f"stopped at the --window-mb cap ({cap:,} bytes of frames)"
        return out


class EvidenceFile:
    """One trigger's evidence: the window at the trigger, then the frames of the next
    `after` seconds, in one file or, with a Rotation, in as many as its bounds make
    (`next_path` names each and may remove old ones; `on_close` hears of each file
    closed). Complete once a frame past `after` arrives or the run ends. At most
    `max_bytes` of frames are written (a flood during `after` must not fill the disk);
    `truncated` says when the cap cut it."""

    def __init__(
        self,
        next_path: Callable[[], str],
        label: str,
        trigger_ts: int,
        after_s: float,
        max_bytes: int,
        *,
        trigger: list[str] | None = None,
        rotation: Rotation = NO_ROTATION,
        on_close: Callable[[Part], None] = lambda _part: None,
    ) -> None:
        self.next_path = next_path
        self.label = label
        self.until = trigger_ts + int(after_s * NS)
        self.packets = 0
        self.bytes = 0
        self.max_bytes = max_bytes
        self.truncated = False
        self.trigger = trigger or []
        self.rotation = rotation
        self.on_close = on_close
        self.parts: list[Part] = []
        self.open = True
        self._open_part()

    def _open_part(self) -> None:
        path = self.next_path()
        try:
            self.fh = open(path, "wb")  # noqa: SIM115 - closed by close(), on every path
        except OSError as err:
            self.open = False
            raise InputError(path, f"cannot write the evidence: {err.strerror or err}") from err
        self.writer = PcapngWriter(self.fh)
        self.parts.append(Part(path, self.trigger, len(self.parts) + 1))

    @property
    def path(self) -> str:
        return self.parts[0].path

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
                    self.truncated = self.parts[-1].truncated = True
                    self.close()
                    return
                part = self.parts[-1]
                t = int(ts[r])
                if part.packets and self.rotation.full(self.fh.tell(), part.first_ts, t):
                    self._close_part()
                    self._open_part()
                    part = self.parts[-1]
                frame = int(batch.frame[r])
                what = named.get(r, "context")
                comment = f"{self.label} frame {frame}: {what}"
                write_row(self.writer, batch, r, comment, source=self.label)
                if not part.packets:
                    part.first_ts = t
                part.packets += 1
                self.packets += 1
        if len(batch) and int(ts[-1]) > self.until:
            self.close()

    def _close_part(self) -> None:
        if not self.fh.closed:
            self.fh.close()
            self.on_close(self.parts[-1])

    def close(self) -> None:
        self.open = False
        self._close_part()
