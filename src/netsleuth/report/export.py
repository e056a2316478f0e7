"""Evidence export: the packets behind the findings, in a pcapng Wireshark opens.

A second pass over each input (so it needs files, not stdin) writes every packet listed
by the selected findings (at most 100 per finding, as in the JSON), the whole fragment
train of each flagged datagram, and `context` packets either side; original timestamps and
link types (one interface block per link type) and a packet comment naming the finding ids
and the original frame number.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from netsleuth.arrays import member
from netsleuth.capture import RecordBatch
from netsleuth.capture.batch import INBOUND
from netsleuth.capture.writer import PcapngWriter
from netsleuth.checks.fragments import fragment_keys
from netsleuth.checks.layers import ip_layers
from netsleuth.decode import PacketTable
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.outpaths import atomic_output
from netsleuth.pipeline import InputResult, open_input, tables

MAX_CONTEXT = 1000
# A packet whose interface the input never described keeps its bytes under LINKTYPE_USER0
# (147, "reserved for private use", tcpdump.org link-layer header types).
LINKTYPE_USER0 = 147


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: str
    packets: int

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "packets": self.packets}


def export_evidence(
    inputs: list[InputResult], findings: list[Finding], out: str, *, context: int = 0
) -> ExportSummary:
    if any(i.path == "-" for i in inputs):
        raise InputError("-", "--export reads its inputs twice: give capture files, not stdin")
    context = max(0, min(context, MAX_CONTEXT))
    written = 0
    # Written to a temporary file beside the target and renamed when complete: an export
    # that fails half-way (a full disk, a signal) leaves neither a partial file nor a
    # clobbered old one. The CLI has already refused an output that is one of the inputs.
    with atomic_output(out) as fh:
        writer = PcapngWriter(fh)
        for inp in inputs:
            if inp.error is None:
                written += _export_one(
                    writer, inp, [f for f in findings if f.input in (inp.path, "<stdin>")], context
                )
    return ExportSummary(out, written)


def _export_one(
    writer: PcapngWriter, inp: InputResult, findings: list[Finding], context: int
) -> int:
    labels, train_keys = finding_labels(findings, inp.flagged_keys)
    if not labels and not train_keys:
        return 0
    flagged = np.fromiter(labels, dtype=np.int64)
    near = (flagged[:, None] + np.arange(-context, context + 1)[None, :]).reshape(-1)
    name = os.path.basename(inp.path)
    written = 0
    for table in tables(open_input(inp.path), InputResult(inp.path)):
        batch = table.batch
        keep = batch_labels(batch, table, labels, train_keys, near)
        for row in sorted(keep):
            comment = f"{name} frame {int(batch.frame[row])}: {keep[row]}"
            write_row(writer, batch, row, comment, source=inp.path, fcs=bool(table.fcs[row]))
            written += 1
    return written


def finding_labels(
    findings: list[Finding], flagged_keys: dict[str, set[bytes]]
) -> tuple[dict[int, list[str]], dict[bytes, list[str]]]:
    """Frame -> the finding tags naming it; fragment reassembly key -> the flagged ids."""
    labels: dict[int, list[str]] = defaultdict(list)
    for f in findings:
        tag = f"{f.id} [{f.layer}]" if f.layer else f.id
        for frame in f.packets:
            labels[frame].append(tag)
    train_keys: dict[bytes, list[str]] = defaultdict(list)
    for f in findings:
        for k in flagged_keys.get(f.id, ()):
            train_keys[k].append(f.id)
    return labels, train_keys


def batch_labels(
    batch: RecordBatch,
    t: PacketTable,
    labels: dict[int, list[str]],
    train_keys: dict[bytes, list[str]],
    near: NDArray[np.int64],
) -> dict[int, str]:
    """Row -> comment for the rows of one batch worth exporting: the findings' packets,
    the fragments of flagged datagrams, and the frames numbered in `near` (context)."""
    keep: dict[int, str] = {}
    for i in np.flatnonzero(member(batch.frame, near)):
        keep[int(i)] = "context"
    if train_keys:
        for layer_name, layer, present in ip_layers(t):
            rows = np.flatnonzero(present & layer.is_frag)
            if rows.shape[0] == 0:
                continue
            for i, k in zip(rows, fragment_keys(t, layer_name, layer, rows), strict=True):
                ids = train_keys.get(k.tobytes())
                if ids:
                    keep[int(i)] = "fragment of a datagram flagged " + ", ".join(sorted(set(ids)))
    flagged = np.fromiter(labels, dtype=np.int64)
    for i in np.flatnonzero(member(batch.frame, flagged)):
        keep[int(i)] = ", ".join(labels[int(batch.frame[i])])
    return keep


def write_row(
    writer: PcapngWriter,
    batch: RecordBatch,
    row: int,
    comment: str,
    *,
    source: str,
    fcs: bool = False,
) -> None:
    """One record of a batch, with its original timestamp, link type, interface (within
    `source`, the input it came from) and direction (what pcapng cannot hold is said in the
    comment). `fcs`: the record ends in its frame's FCS (PacketTable.fcs), which is left
    out: the frame is written as it was judged, as a capture without FCSs holds it, so no
    interface needs if_fcslen and tshark and a rescan read the frame the scan did."""
    ts, linktype = int(batch.ts_ns[row]), int(batch.linktype[row])
    caveats = ""
    if ts < 0:  # pcapng timestamps are unsigned: a clock before 1970 is not written
        caveats += f" (original time {ts} ns before 1970; written as 0)"
        ts = 0
    if not 0 <= linktype <= 0xFFFF:
        caveats += " (the input names no link type for it)"
        linktype = LINKTYPE_USER0
    direction = 0 if batch.direction is None else int(batch.direction[row]) & 3
    if batch.wire:  # received by a capture card on the wire: inbound, so offload is ruled out
        caveats += " (captured on the wire: ERF)"
        direction = INBOUND
    if batch.linux is not None and batch.linux[row]:  # no packet option says it
        caveats += " (captured by a Linux host)"
    data, wirelen = batch.packet(row), int(batch.wirelen[row])
    if fcs:
        wirelen -= 4
        data = data[:wirelen]
        caveats += " (its 4-byte FCS left out)"
    writer.packet(
        ts,
        data,
        linktype=linktype,
        wirelen=wirelen,
        comment=f"netsleuth: {comment}{caveats}",
        interface=(source, 0 if batch.iface is None else int(batch.iface[row])),
        direction=direction,
    )
