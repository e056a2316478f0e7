"""The capture pipeline: inputs -> reader -> batches -> decode -> analyses.

`tables()` is the one loop that reads a capture. It alone fills the per-input record
(`InputResult`: format, compression, link types, packets, bytes, and the read issues,
capture.truncated_file included) and yields each decoded batch to whatever analyses the
command runs. `scan` (netsleuth/scan.py), `steer` (steering/run.py) and `--export`
(report/export.py) run on it: each opens the reader with `open_input`, iterates
`tables(reader, record)` and feeds the tables to its checks, models or writer, so all
three report the same input record and read issues.

An analysis is an object with `observe(table)` and `findings()`. A mergeable one also has
`merge(other, frame_offset)`: N partial runs over consecutive parts of the packets, merged
in order, equal one run over all of them (the tallies keep the smallest frame numbers, the
sets and counters are unions and sums within their bounds). The fragment audit and the
outer reassembly are not mergeable: a datagram's verdict depends on every earlier fragment
of its key, so they run once, in file order, over the fragments the parts hand over
(netsleuth/scale/ explains how and what it costs).
"""

from __future__ import annotations

import builtins
import contextlib
import gc
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netsleuth.capture import CaptureReader, open_capture
from netsleuth.capture.chunks import DropCounts, ReadIssue
from netsleuth.decode import DEFAULT_TUNNEL_DEPTH, PacketTable, decode
from netsleuth.findings import Finding
from netsleuth.findings.catalogue import catalogue_finding

Progress = Callable[[str, int], None]  # (input name, bytes consumed so far)


@dataclass
class InputResult:
    """What the pipeline says about one input, whatever the command."""

    path: str
    format: str | None = None
    compressed: bool = False
    packets: int = 0
    # The frame numbers the input used (not JSON): its packets, and pcapng's blocks that
    # Wireshark numbers as frames (capture/pcapng.py FRAME_ONLY); a split file's next
    # range's frames are shifted by it.
    frames: int = 0
    bytes: int = 0
    linktypes: Counter[int] = field(default_factory=Counter)
    error: str | None = None
    # finding id -> reassembly keys of flagged datagrams (for evidence export; not JSON)
    flagged_keys: dict[str, set[builtins.bytes]] = field(default_factory=dict)
    # what was wrong with the file itself (not JSON: reported as findings)
    issues: list[ReadIssue] = field(default_factory=list)
    # the capture's own drop counters per (section, interface): StreamReader.drops
    drops: DropCounts = field(default_factory=DropCounts)

    def reported_issues(self) -> list[ReadIssue]:
        """The read issues, and the packets the capture's statistics say it dropped: one
        issue, at the earliest of the interfaces' latest statistics blocks that count
        drops (the last frame before it)."""
        lost = sorted((o, f, n) for n, f, o in self.drops.items.values() if n > 0)
        if not lost:
            return self.issues
        offset, frame, _ = lost[0]
        some = "at least " if self.drops.bounded else ""
        message = (
            f"the capture's statistics say {some}{{lost}} packet(s) were dropped while it "
            f"was written ({len(lost)} interface(s); pcapng isb_ifdrop + isb_osdrop)"
        )
        loss = ReadIssue(
            "capture.capture_loss",
            offset,
            max(frame, 1),
            message,
            stops=False,
            lost=sum(n for _, _, n in lost),
        )
        return [*self.issues, loss]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "compressed": self.compressed,
            "packets": self.packets,
            "bytes": self.bytes,
            "linktypes": {str(k): v for k, v in sorted(self.linktypes.items())},
            "error": self.error,
        }

    def merge(self, other: InputResult) -> None:
        """Add the counts of the next part of the same input."""
        self.packets += other.packets
        self.frames += other.frames
        self.bytes += other.bytes
        self.linktypes.update(other.linktypes)


# Python's cyclic collector runs its youngest generation every 700 container objects
# allocated, by default.
FEW_COLLECTIONS = 100_000


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Python's cyclic garbage collector less often while captures are read: its youngest
    generation every FEW_COLLECTIONS objects allocated. The fragment trackers hold the
    datagrams still open as Python objects (a Datagram, its lists, a tuple a fragment);
    collections every few hundred allocations walked them again and again: 30 % of a
    FragmentSmack-style scan (300k fragments: 1.76 -> 1.36 s; 1.26 s with no collector).
    What the pipeline makes holds no reference cycles, so no garbage waits on it."""
    old = gc.get_threshold()
    gc.set_threshold(FEW_COLLECTIONS, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def open_input(path: str) -> CaptureReader:
    """Open a capture (raises InputError when it is not one)."""
    return open_capture(path)


def tables(
    reader: CaptureReader,
    res: InputResult,
    *,
    tunnel_depth: int = DEFAULT_TUNNEL_DEPTH,
    progress: Progress | None = None,
) -> Generator[PacketTable, None, None]:
    """Decode every batch of `reader`, counting it in `res`; the source is closed however
    the iteration ends, and `res.issues` is set once it is done."""
    res.format = reader.kind
    res.compressed = reader.compressed
    try:
        for batch in reader.batches():
            table = decode(batch, tunnel_depth=tunnel_depth)
            res.packets += len(batch)
            # As the capture records them (capinfos, the sum of tshark's frame.len), an FCS a
            # record ends in (PacketTable.fcs) included.
            res.bytes += int(batch.wirelen.sum())
            lt = batch.linktype
            if lt.shape[0] and lt[0] == lt.min() == lt.max():  # one link type: no sort
                res.linktypes[int(lt[0])] += int(lt.shape[0])
            else:
                lts, counts = np.unique(lt, return_counts=True)
                for v, n in zip(lts, counts, strict=True):
                    res.linktypes[int(v)] += int(n)
            yield table
            if progress is not None:
                progress(reader.name, reader.source.consumed)
    finally:
        reader.source.close()
    res.frames += reader.frames_read()
    res.issues = read_issues(reader, reader.frames_read())
    res.drops = reader.drops


def issue_finding(issue: ReadIssue) -> Finding:
    """A read issue (a cut or corrupt file) as the finding every command reports."""
    return catalogue_finding(
        issue.id,
        issue.count,
        (issue.frame,),
        summary=issue.summary,
        evidence={
            "byte_offset": issue.offset,
            "frame": issue.frame,
            **({"lost": issue.lost} if issue.lost else {}),
        },
    )


def read_issues(reader: CaptureReader, frames: int) -> list[ReadIssue]:
    """The reader's issues; a compressed stream cut exactly between two records is a
    truncated file too."""
    issues = list(reader.issues)
    if reader.source.stream_error and not any(i.id == "capture.truncated_file" for i in issues):
        issues.append(
            ReadIssue(
                "capture.truncated_file",
                reader.source.consumed,
                frames + 1,
                f"the compressed stream ended early ({reader.source.stream_error})",
            )
        )
    return issues
