"""Solaris snoop files (RFC 1761): a 16-byte file header, then records of a 24-byte header,
the captured bytes and padding to the record length; every field big-endian.

Rare and small beside pcap, so read record by record in Python; batches stay bounded
(BATCH_RECORDS records, and BATCH_BYTES of captured bytes and one record more).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.chunks import CHUNK_BYTES, ReadIssue, StreamReader
from netsleuth.capture.source import ByteSource
from netsleuth.errors import InputError

MAGIC = b"snoop\0\0\0"
RECORD = struct.Struct(">IIIIII")  # original, included, record length, drops, sec, usec
MAX_INCLUDED = 262144  # as pcap.MAXIMUM_SNAPLEN: a larger record is corrupt
# RFC 1761 pads each record's data to a 4-byte boundary; some writers leave a little more
# (a trailer). A record length beyond the data and this much slack is corrupt: it is never
# read (a 32-bit length would otherwise be read whole, up to 4 GB into memory).
MAX_PADDING = 4096
BATCH_RECORDS = 4096
# A batch's captured bytes, as the other readers' buffers hold: 4096 records of
# MAX_INCLUDED bytes are 1 GiB, which a batch held three times over (the records, their
# join, the batch's buffer): 3.2 GB of peak RSS from 1 MB of gzip.
BATCH_BYTES = CHUNK_BYTES
# RFC 1761 section "Datalink Type" codes, and what Solaris writes (DL_ETHER 4 for Ethernet;
# DL_CSMACD 0 is 802.3, framed the same) -> pcap LINKTYPE_*. Others are kept unknown (-1)
# and named capture.unsupported_linktype by the decoder.
LINKTYPES = {0: 1, 4: 1, 2: 6, 8: 10}


class SnoopReader(StreamReader):
    kind = "snoop"

    def __init__(self, source: ByteSource, *, compressed: bool = False) -> None:
        super().__init__(source, compressed=compressed)
        head = source.read(16)
        if len(head) < 16 or head[:8] != MAGIC:
            source.close()
            raise InputError(self.name, f"truncated snoop file header ({len(head)} of 16 bytes)")
        version, datalink = struct.unpack(">II", head[8:])
        if version not in (1, 2):
            source.close()
            raise InputError(self.name, f"snoop version {version} (only 1 and 2 exist)")
        self.datalink = datalink
        self.linktype = LINKTYPES.get(datalink, -1)

    def _batches(self) -> Iterator[RecordBatch]:
        frames: list[bytes] = []
        wire: list[int] = []
        ts: list[int] = []
        frame, held = 1, 0
        while True:
            issue = self._record(frames, wire, ts, frame + len(frames))
            if issue is None:
                held += len(frames[-1])
            full = len(frames) == BATCH_RECORDS or held >= BATCH_BYTES
            if frames and (issue is not None or full):
                yield self._batch(frames, wire, ts, frame)
                frame += len(frames)
                frames, wire, ts, held = [], [], [], 0
            if issue is not None:
                if issue.id:
                    self.issues.append(issue)
                return

    def _record(
        self, frames: list[bytes], wire: list[int], ts: list[int], frame: int
    ) -> ReadIssue | None:
        """Read one record into the lists; a ReadIssue (id "" at a clean end) stops."""
        at = self.source.consumed
        head = self.source.read(RECORD.size)
        if not head:
            return ReadIssue("", at, frame, "")
        if len(head) < RECORD.size:
            return ReadIssue(
                "capture.truncated_file", at, frame, f"the file ends inside record {frame}"
            )
        orig, incl, rec_len, _drops, sec, usec = RECORD.unpack(head)
        pad = rec_len - RECORD.size - incl
        if incl > MAX_INCLUDED or not 0 <= pad <= MAX_PADDING:
            return ReadIssue(
                "capture.corrupt_record",
                at,
                frame,
                f"record {frame} claims {incl} captured bytes in a {rec_len}-byte record; "
                "the rest of the file was not read",
            )
        data = self.source.read(incl)
        if len(data) < incl:
            return ReadIssue(
                "capture.truncated_file",
                at,
                frame,
                f"the file ends inside record {frame} ({len(data)} bytes of it present)",
            )
        # The padding is bounded above; a file ending inside it loses no captured byte.
        self.source.read(pad)
        frames.append(data)
        wire.append(max(orig, incl))
        ts.append(sec * 1_000_000_000 + usec * 1_000)
        return None

    def _batch(
        self, frames: list[bytes], wire: list[int], ts: list[int], first: int
    ) -> RecordBatch:
        b = RecordBatch.from_packets(frames, linktype=self.linktype, wirelen=wire, ts_ns=ts)
        b.frame[:] += first - 1
        return b
