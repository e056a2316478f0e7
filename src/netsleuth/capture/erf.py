"""Endace ERF files (the DAG cards' Extensible Record Format; Wireshark wiretap/erf.c and
erf_record.h): records one after the other, no file header, so no magic: a file is taken
for ERF when its first records read as ERF records, after every format with a magic has
said no (capture/source.py: erf_refusal, Wireshark's test).

A record: a 16-byte header (timestamp u64 little-endian, seconds << 32 | binary fraction;
type; flags; record length, loss counter and wire length u16 big-endian), 8-byte
extension headers while each says another follows, a subheader for some types (the
Ethernet types' 2 pad bytes), then the captured bytes (capture/_framing.c: walk_erf).
Frames are numbered as Wireshark numbers them: every record but PAD records is a frame,
the provenance (META) records too, kept whole as LINKTYPE_ERF and counted as capture
metadata by the decoder (decode/erfmeta.py). An Ethernet record ends in the frame's FCS
where the card kept it; nothing in the record says so, and the decoder finds it as tshark
does (RecordBatch.fcs_len, PacketTable.settle_fcs).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture import _framing
from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.chunks import (
    CHUNK_BYTES,
    MAX_RECORDS,
    Chunker,
    ReadIssue,
    StreamReader,
    add_issue,
    walked,
)
from netsleuth.capture.source import ERF_ETH_TYPES, ERF_HEADER, ByteSource

LINKTYPE_ERF = 197  # a record netsleuth does not decode (LINKTYPE_ERF names ERF records)
HDLC_TYPES = (1, 10, 15, 19)  # HDLC_POS and its COLOR_, DSM_COLOR_, COLOR_HASH_ kinds
# ERF type -> pcap LINKTYPE_*: Ethernet; bare IPv4 and IPv6; HDLC_POS by its first bytes
# (_batch). The rest (ATM cells, AAL5, multichannel, InfiniBand, META, and the types
# erf_record.h does not name, which Wireshark reads as records too) are not decoded.
_LINKTYPES = np.full(128, LINKTYPE_ERF, dtype=np.int32)
_LINKTYPES[list(ERF_ETH_TYPES)] = 1
_LINKTYPES[22] = 228  # ERF_TYPE_IPV4 -> LINKTYPE_IPV4
_LINKTYPES[23] = 229  # ERF_TYPE_IPV6 -> LINKTYPE_IPV6
_HDLC = np.zeros(128, dtype=np.bool_)
_HDLC[list(HDLC_TYPES)] = True
# The types whose header field after the record length is a loss counter: records the
# card lost between this one and the one before on its interface. In the COLOR_ types
# (10, 11, 15-17, 19, 20) it is a colour or hash instead, and the newer types are left
# out, not being sure of them (Endace ERF types reference; Wireshark erf.lctr).
_LOSS = np.zeros(128, dtype=np.bool_)
_LOSS[[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 18]] = True


class ErfReader(StreamReader):
    kind = "erf"

    def __init__(
        self, source: ByteSource, *, compressed: bool = False, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        super().__init__(source, compressed=compressed)
        self.chunk_bytes = max(chunk_bytes, 1 << 16)  # a record is at most 65535 bytes

    def _batches(self) -> Iterator[RecordBatch]:
        ch = Chunker(self.source, self.chunk_bytes)
        out = np.empty((5, MAX_RECORDS), dtype=np.int64)
        yield from walked(
            ch,
            lambda pos, at: _framing.walk_erf(ch.buf.data, pos, ch.have, out.data, at),
            lambda n, frame: self._batch(ch, out[:, :n], frame),
            lambda pos, frame: _corrupt(ch.buf, pos, ch.base + pos, frame),
            self.issues,
        )

    def _batch(self, ch: Chunker, rows: NDArray[np.int64], first: int) -> RecordBatch:
        info = rows[4].view(np.uint64)
        kind = (info & 0x7F).astype(np.intp)
        self._losses(ch.base, rows[0], info, kind, first)
        return _records(ch.buf, rows, info, kind, first)

    def _losses(
        self,
        base: int,
        offset: NDArray[np.int64],
        info: NDArray[np.uint64],
        kind: NDArray[np.intp],
        first: int,
    ) -> None:
        """The loss counters of these records, as one issue however many buffers."""
        lost = np.where(_LOSS[kind], (info >> 16) & 0xFFFF, 0).astype(np.int64)
        at = np.flatnonzero(lost)
        if at.shape[0]:
            k = int(at[0])
            start = base + int(offset[k]) - int((info[k] >> 32) & 0xFFFF)
            message = "the capture card lost {lost} record(s) before {n} record(s) it marked"
            lost_n = int(lost.sum())
            issue = ReadIssue(
                "capture.capture_loss",
                start,
                first + k,
                message,
                stops=False,
                count=len(at),
                lost=lost_n,
            )
            add_issue(self.issues, issue)


ERF_CAP_MASK = 0x03


def _records(
    buf: NDArray[np.uint8],
    rows: NDArray[np.int64],
    info: NDArray[np.uint64],
    kind: NDArray[np.intp],
    first: int,
) -> RecordBatch:
    """The batch of walk_erf's `rows`; `kind`: each record's type, extension bit cleared."""
    offset, caplen, wirelen, ts_ns = (r.copy() for r in rows[:4])
    linktype = _LINKTYPES[kind]
    hdlc = np.flatnonzero(_HDLC[kind] & (caplen >= 2))
    if hdlc.shape[0]:
        # Which HDLC framing, from the address byte (Wireshark's ERF dissector guesses
        # too): 0xFF 0x03 is PPP in HDLC-like framing (RFC 1662 section 3.1), 0x0F and
        # 0x8F Cisco HDLC's unicast and broadcast addresses.
        a, c = buf[offset[hdlc]], buf[offset[hdlc] + 1]
        ppp, cisco = (a == 0xFF) & (c == 0x03), (a == 0x0F) | (a == 0x8F)
        linktype[hdlc] = np.where(ppp, 50, np.where(cisco, 104, LINKTYPE_ERF))
    whole = np.flatnonzero(linktype == LINKTYPE_ERF)
    if whole.shape[0]:
        # A record not decoded here is kept whole, its ERF header included, as
        # LINKTYPE_ERF packets are: exported as evidence, tshark reads it as ERF again.
        skip = ((info[whole] >> 32) & 0xFFFF).astype(np.int64)
        rlen = (info[whole] >> 48).astype(np.int64)
        offset[whole] -= skip
        wirelen[whole] = np.maximum(rlen, skip + wirelen[whole])
        caplen[whole] = rlen
    n = offset.shape[0]
    return RecordBatch(
        buf=buf,
        offset=offset,
        caplen=caplen,
        wirelen=wirelen,
        ts_ns=ts_ns,
        linktype=linktype,
        frame=np.arange(first, first + n, dtype=np.int64),
        # The capture interface, the flags' low two bits (Wireshark's ERF_HDR_CAP_MASK,
        # epan/dissectors/packet-erf.c): a DAG card's ports, which the fragment keys tell
        # apart (RecordBatch.iface).
        iface=((info >> np.uint64(8)) & np.uint64(ERF_CAP_MASK)).astype(np.uint32),
        wire=True,
        # A DAG card keeps each Ethernet frame's FCS (its wire length counts it) and the
        # record does not say so: found where packet-eth.c's add_ethernet_trailer finds it
        # (PacketTable.settle_fcs).
        fcs_len=np.full(n, -1, dtype=np.int8),
    )


def _corrupt(buf: NDArray[np.uint8], pos: int, offset: int, frame: int) -> ReadIssue:
    rlen = int(buf[pos + 10]) << 8 | int(buf[pos + 11])
    if rlen < ERF_HEADER:
        why = f"a record length of {rlen}, below its 16-byte header"
    elif rlen == ERF_HEADER:
        why = "no bytes after its 16-byte header"
    else:
        why = f"extension headers or a subheader longer than its {rlen} bytes"
    return ReadIssue(
        "capture.corrupt_record",
        offset,
        frame,
        f"record {frame} has {why}; the rest of the file was not read",
    )
