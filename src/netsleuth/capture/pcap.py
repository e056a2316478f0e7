"""libpcap savefiles (draft-ietf-opsawg-pcap): both byte orders, us and ns timestamps, and the
variants with longer record headers (record_size)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from netsleuth.capture import _framing
from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.chunks import (
    CHUNK_BYTES,
    MAX_RECORDS,
    Chunker,
    ReadIssue,
    StreamReader,
    walked,
)
from netsleuth.capture.source import MODIFIED_PCAP_MAGICS, PCAP_MAGICS, ByteSource
from netsleuth.errors import InputError

# libpcap refuses records longer than MAXIMUM_SNAPLEN (262144, pcap-int.h) for ordinary
# link types; a larger length field is corruption, and trusting it would make us allocate
# or skip absurd amounts. A header snaplen above that is honoured up to 16 MiB.
MAXIMUM_SNAPLEN = 262144
HARD_LIMIT = 16 << 20

# Record header sizes (wiretap/libpcap.h). With the standard magic: libpcap's own (16), the
# ss990417 patch of Red Hat 6.1 (24: interface index, protocol, packet type, pad appended)
# and Nokia's (20: four bytes of its own). With the modified magic: ss991029 (24) and
# ss990915 of SuSE 6.3 (28: two CPU bytes and padding more). Only a look at the first
# records tells the ones that share a magic apart, as Wireshark does (wiretap/libpcap.c:
# libpcap_try_variants), though where no size reads them cleanly Wireshark takes the least
# wrong and this the first. Their timestamps are microseconds; a nanosecond file is
# libpcap's own.
STANDARD = (16, 24, 20)
MODIFIED = (24, 28)
TRY_RECORDS = 3
PEEK = 1 << 20  # enough for TRY_RECORDS of all but the largest records
MAX_WIRE = 128 << 20  # an original length beyond is no packet (Wireshark's bound too)


# The file header's link-type field (draft section 4, "LinkType"; pcap-savefile(5)): the
# link type in the low 16 bits; bit 26, P, set says that the top four bits give the length
# of the FCS every frame ends in, in 16-bit words (libpcap's LT_FCS_LENGTH_PRESENT and
# LT_FCS_LENGTH, as its DAG capture writes them). Few writers set them.
LINKTYPE_MASK = 0xFFFF
FCS_PRESENT = 0x04000000
FCS_WORDS_SHIFT = 28


def _declared_fcs(network: int) -> int:
    """The octets of FCS the link-type field declares, 0 for none or nothing said: as
    tshark 4.0 reads it (libpcap.c), 2 octets a word, and nothing where P is clear,
    whatever the top bits hold."""
    return (network >> FCS_WORDS_SHIFT) * 2 if network & FCS_PRESENT else 0


def max_caplen(snaplen: int) -> int:
    """The largest captured length accepted in a file with this header snap length."""
    return max(MAXIMUM_SNAPLEN, min(snaplen, HARD_LIMIT))


@dataclass(frozen=True)
class RecordLayout:
    order: str
    frac_ns: int
    snaplen: int
    max_caplen: int


def record_size(layout: RecordLayout, modified: bool, first: bytes) -> int:
    """The record header size of a file whose records start with `first`."""
    if layout.frac_ns != 1_000:
        return 16
    sizes = MODIFIED if modified else STANDARD
    # The first size whose records look right; none does: the first (a corrupt file is
    # read as what its magic says first, and its reader names the corrupt record).
    return next((s for s in sizes if _merit(layout, s, first) == 0), sizes[0])


def _merit(layout: RecordLayout, size: int, data: bytes) -> int:
    """How wrong the first records' headers look read `size` bytes long: 0 when none does
    (wiretap/libpcap.c: libpcap_try_record's figure of merit). A record the end of `data`
    cuts counts for nothing: files are cut, and the reader says so."""
    pos = 0
    for _ in range(TRY_RECORDS):
        if pos + size > len(data):
            break
        _sec, frac, caplen, wirelen = struct.unpack_from(layout.order + "IIII", data, pos)
        bad = (
            (frac >= 1_000_000)
            + (caplen > layout.max_caplen)
            + (wirelen > MAX_WIRE)
            + (caplen > layout.snaplen)
            + (caplen > wirelen)
        )
        if bad:
            return int(bad)
        pos += size + caplen
    return 0


class PcapReader(StreamReader):
    kind = "pcap"

    def __init__(
        self,
        source: ByteSource,
        *,
        compressed: bool = False,
        chunk_bytes: int = CHUNK_BYTES,
        record: int | None = None,
    ) -> None:
        """`record`: the record header size when the caller knows it (a split file's range,
        which exists only for libpcap's own 16 bytes: split.layout), else found from the
        first records (record_size)."""
        super().__init__(source, compressed=compressed)
        head = source.read(24)
        if len(head) < 24:
            source.close()
            raise InputError(self.name, f"truncated pcap file header ({len(head)} of 24 bytes)")
        modified = head[:4] in MODIFIED_PCAP_MAGICS
        if modified:
            order, self.frac_ns = MODIFIED_PCAP_MAGICS[head[:4]], 1_000
        else:
            order, self.frac_ns = PCAP_MAGICS[head[:4]]
        self.swapped = order == ">"
        _vmaj, _vmin, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", head[4:])
        self.linktype = network & LINKTYPE_MASK
        self.fcs_len = _declared_fcs(network)
        self.snaplen = snaplen
        self.max_caplen = max_caplen(snaplen)
        layout = RecordLayout(order, self.frac_ns, snaplen, self.max_caplen)
        if record is None:
            record = record_size(layout, modified, source.peek(PEEK))
        self.record = record
        # A buffer always holds the largest record we accept, so the walk always progresses.
        self.chunk_bytes = max(chunk_bytes, self.max_caplen + self.record)

    def _batches(self) -> Iterator[RecordBatch]:
        ch = Chunker(self.source, self.chunk_bytes)
        out = np.empty((4, MAX_RECORDS), dtype=np.int64)

        def walk(pos: int, at: int) -> tuple[int, int, int]:
            return _framing.walk_pcap(
                ch.buf.data,
                pos,
                ch.have,
                self.swapped,
                self.max_caplen,
                self.frac_ns,
                out.data,
                self.record,
                at,
            )

        def batch(n: int, frame: int) -> RecordBatch:
            return RecordBatch(
                buf=ch.buf,
                offset=out[0, :n].copy(),
                caplen=out[1, :n].copy(),
                # The original length as the record says, whatever it is: wiretap/libpcap.c
                # bounds none (unlike snoop.c, capture/snoop.py: MAX_LENGTH), and below the
                # captured bytes too. tshark 4.0 reads a record of 4,294,967,295, capinfos
                # counting it whole; only its frame.len field shows 2,147,483,647 for it,
                # where the bytes here count it whole as capinfos does.
                wirelen=out[2, :n].copy(),
                ts_ns=out[3, :n].copy(),
                linktype=np.full(n, self.linktype, dtype=np.int32),
                frame=np.arange(frame, frame + n, dtype=np.int64),
                fcs_len=np.full(n, self.fcs_len, dtype=np.int8) if self.fcs_len else None,
            )

        def corrupt(pos: int, frame: int) -> ReadIssue:
            return ReadIssue(
                "capture.corrupt_record",
                ch.base + pos,
                frame,
                f"record {frame} claims an absurd captured length "
                f"(> {self.max_caplen}); the rest of the file was not read",
            )

        yield from walked(ch, walk, batch, corrupt, self.issues)
