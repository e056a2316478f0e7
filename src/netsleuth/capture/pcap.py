"""libpcap savefiles (draft-ietf-opsawg-pcap): both byte orders, us and ns timestamps."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from netsleuth.capture import _framing
from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.chunks import (
    CHUNK_BYTES,
    MAX_RECORDS,
    Chunker,
    ReadIssue,
    StreamReader,
)
from netsleuth.capture.source import PCAP_MAGICS, ByteSource
from netsleuth.errors import InputError

# libpcap refuses records longer than MAXIMUM_SNAPLEN (262144, pcap-int.h) for ordinary
# link types; a larger length field is corruption, and trusting it would make us allocate
# or skip absurd amounts. A header snaplen above that is honoured up to 16 MiB.
MAXIMUM_SNAPLEN = 262144
HARD_LIMIT = 16 << 20
ST_OUT_FULL, ST_BAD_LENGTH = 1, 2


class PcapReader(StreamReader):
    kind = "pcap"

    def __init__(
        self, source: ByteSource, *, compressed: bool = False, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.source = source
        self.compressed = compressed
        self.name = source.name
        self.issues: list[ReadIssue] = []
        self.records = 0
        head = source.read(24)
        if len(head) < 24:
            source.close()
            raise InputError(self.name, f"truncated pcap file header ({len(head)} of 24 bytes)")
        order, self.frac_ns = PCAP_MAGICS[head[:4]]
        self.swapped = order == ">"
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", head[4:])
        # The link type is the low 16 bits; the upper bits carry FCS information (draft
        # section 4), which no common writer sets.
        self.linktype = network & 0xFFFF
        self.snaplen = snaplen
        self.max_caplen = max(MAXIMUM_SNAPLEN, min(snaplen, HARD_LIMIT))
        # A buffer always holds the largest record we accept, so the walk always progresses.
        self.chunk_bytes = max(chunk_bytes, self.max_caplen + 16)

    def _batches(self) -> Iterator[RecordBatch]:
        ch = Chunker(self.source, self.chunk_bytes)
        ch.refill(0)
        out = np.empty((4, MAX_RECORDS), dtype=np.int64)
        pos, frame = 0, 1
        while True:
            n, newpos, st = _framing.walk_pcap(
                ch.buf.data, pos, ch.have, self.swapped, self.max_caplen, self.frac_ns, out.data
            )
            if n:
                yield RecordBatch(
                    buf=ch.buf,
                    offset=out[0, :n].copy(),
                    caplen=out[1, :n].copy(),
                    wirelen=out[2, :n].copy(),
                    ts_ns=out[3, :n].copy(),
                    linktype=np.full(n, self.linktype, dtype=np.int32),
                    frame=np.arange(frame, frame + n, dtype=np.int64),
                )
                frame += n
            pos = newpos
            if st == ST_BAD_LENGTH:
                self.issues.append(
                    ReadIssue(
                        "capture.corrupt_record",
                        ch.base + pos,
                        frame,
                        f"record {frame} claims an absurd captured length "
                        f"(> {self.max_caplen}); the rest of the file was not read",
                    )
                )
                return
            if st == ST_OUT_FULL:
                continue
            if ch.eof:
                if pos < ch.have:
                    self.issues.append(
                        ReadIssue(
                            "capture.truncated_file",
                            ch.base + pos,
                            frame,
                            f"the file ends inside record {frame} "
                            f"({ch.have - pos} bytes of it present)",
                        )
                    )
                return
            ch.refill(pos)
            pos = 0
