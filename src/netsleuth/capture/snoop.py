"""Solaris snoop files (RFC 1761), and Shomiti/Finisar Surveyor's, read as Wireshark reads
them (wiretap/snoop.c): a 16-byte file header (the magic, a version, a network type), then
records of a 24-byte header, the captured bytes and padding to the record length; every
field big-endian.

Wireshark reads versions 2 (Sun's snoop; Surveyor's with an NDIS card) and 3-5 (Surveyor
3.0 and later with Shomiti's CMM2, GAM and THG hardware) and refuses the others, version 1
among them, and any network type its tables do not map. A Surveyor file is told by its
first record's padding, not its version: 16 bytes or more of it (a Shomiti trailer: a wire
length, status flags, a 40 ns timestamp and a frame id) make the file Shomiti's, whose
network types mean other links (Shomiti took the numbers RFC 1761 left unassigned) and
whose Ethernet frames end in their FCS. The record header is the same; the trailer is
not read (Wireshark reads none of it either).

Rare and small beside pcap, so read record by record in Python; batches stay bounded
(BATCH_RECORDS records, and BATCH_BYTES of captured bytes and one record more).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.chunks import CHUNK_BYTES, ReadIssue, StreamReader
from netsleuth.capture.source import ByteSource
from netsleuth.errors import InputError

MAGIC = b"snoop\0\0\0"
RECORD = struct.Struct(">IIIIII")  # original, included, record length, drops, sec, usec
# WTAP_MAX_PACKET_SIZE_STANDARD: snoop.c takes a record whose original or included length
# is larger for corruption and stops reading there, as this reader does. (A pcap record's
# original length is not bounded so: wiretap/libpcap.c reads any, capture/pcap.py too.)
MAX_LENGTH = 262144
VERSIONS = (2, 3, 4, 5)
SHOMITI_TRAILER = 16  # sizeof (struct shomiti_trailer): this much padding or more: Shomiti
BATCH_RECORDS = 4096
# A batch's captured bytes, as the other readers' buffers hold: 4096 records of
# MAX_LENGTH bytes are 1 GiB, which a batch held three times over (the records, their
# join, the batch's buffer): 3.2 GB of peak RSS from 1 MB of gzip.
BATCH_BYTES = CHUNK_BYTES
NO_LINKTYPE = -1  # a link Wireshark reads that no pcap link type names
ATM, IEEE802_11 = 123, 105  # LINKTYPE_SUNATM, LINKTYPE_IEEE802_11
# snoop.c's tables of the network types it reads -> pcap LINKTYPE_*. RFC 1761 and DLPI's
# DL_* codes: 802.3 and Ethernet, Token Ring (802.5), FDDI (its addresses bit-swapped, as
# WTAP_ENCAP_FDDI_BITSWAPPED says; not decoded here either way), "Other" and software
# loopback (BSD loopback headers: WTAP_ENCAP_NULL), IP over Fibre Channel, atmsnoop's ATM
# (each packet after a 4-byte flags/VPI/VCI header: LINKTYPE_SUNATM's, kept, so the frame
# is 4 bytes longer than tshark's, as a SunATM pcap file's is), InfiniBand (a 4-byte IPoIB
# header: no pcap link type); and the private types' ipnet (Solaris 11).
LINKTYPES = {0: 1, 2: 6, 4: 1, 8: 10, 9: 0, 14: 0, 16: 122, 18: ATM, 26: NO_LINKTYPE}
PRIVATE = 0x80000000
PRIVATE_LINKTYPES = {5: 226}
# Shomiti's: 10, 100 and 1000 Mb/s and 10 Gb/s Ethernet, 4 and 16 Mb/s Token Ring in two
# kinds each, FDDI, and 802.11 after a Surveyor header (stripped: _surveyor_header), the
# frame ending in its FCS (tshark's wlan.fcs; trailing bytes to the 802.11 decoder).
SHOMITI_LINKTYPES = {
    **dict.fromkeys((0, 4, 10, 12, 19), 1),
    **dict.fromkeys((2, 11, 13, 14), 6),
    8: 10,
    18: IEEE802_11,
}


@dataclass(frozen=True)
class Link:
    """How a file's records are read: its link type, and the octets of FCS its Ethernet
    frames end in (RecordBatch.fcs_len): 4 in a Shomiti file, as wiretap/snoop.c gives
    them an fcs_len of 4; 0 in Sun's, whose frames carry none."""

    linktype: int
    fcs_len: int

    def header_min(self) -> int:
        """The captured bytes snoop.c requires of a record: atmsnoop's ATM header, the 12
        bytes of a Surveyor 802.11 header that say its length."""
        return {ATM: 4, IEEE802_11: 12}.get(self.linktype, 0)


def open_link(name: str, version: int, network: int, first: bytes) -> Link:
    """The link of a file whose header says `version` and `network` and whose first record
    header is `first` (b"": none): an InputError (one line, exit 2) where Wireshark refuses
    the file."""
    if version not in VERSIONS:
        raise InputError(
            name,
            f"snoop version {version}: Wireshark reads 2 (Sun's snoop) and 3-5 (Shomiti "
            "Surveyor's) only",
        )
    if 0 < len(first) < RECORD.size:
        raise InputError(
            name, f"the file ends inside its first record's header ({len(first)} of 24 bytes)"
        )
    shomiti = False
    if first:
        _orig, incl, rec_len = RECORD.unpack(first)[:3]
        shomiti = rec_len >= RECORD.size + incl + SHOMITI_TRAILER
    if shomiti:
        table, kind, key = SHOMITI_LINKTYPES, "Shomiti network type", network
    elif network & PRIVATE:
        table, kind, key = PRIVATE_LINKTYPES, "private network type", network ^ PRIVATE
    else:
        table, kind, key = LINKTYPES, "network type", network
    if key not in table:
        raise InputError(name, f"snoop {kind} {network}: a link Wireshark does not read either")
    linktype = table[key]
    return Link(linktype, 4 if shomiti and linktype == 1 else 0)


class SnoopReader(StreamReader):
    kind = "snoop"

    def __init__(self, source: ByteSource, *, compressed: bool = False) -> None:
        super().__init__(source, compressed=compressed)
        head = source.read(16)
        if len(head) < 16 or head[:8] != MAGIC:
            source.close()
            raise InputError(self.name, f"truncated snoop file header ({len(head)} of 16 bytes)")
        version, network = struct.unpack(">II", head[8:])
        try:
            self.link = open_link(self.name, version, network, source.peek(RECORD.size))
        except InputError:
            source.close()
            raise

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
            return _cut(at, frame, f"the file ends inside record {frame}")
        orig, incl, rec_len, _drops, sec, usec = RECORD.unpack(head)
        why = _corrupt(orig, incl, rec_len, self.link.header_min())
        if why:
            return _broken(at, frame, why)
        data = self.source.read(incl)
        if len(data) < incl:
            return _cut(
                at, frame, f"the file ends inside record {frame} ({len(data)} bytes of it present)"
            )
        skip = 0
        if self.link.linktype == IEEE802_11:
            skip, why = _surveyor_header(data)
            if why:
                return _broken(at, frame, why)
        # The padding, however long, is read past (snoop.c skips it all); a file ending
        # inside it ends inside the record, which Wireshark then does not read either.
        pad = rec_len - RECORD.size - incl
        if self.source.skip(pad) < pad:
            return _cut(
                at, frame, f"the file ends inside record {frame}'s padding; the record was not read"
            )
        frames.append(data[skip:])
        # The original length as the record says, even below the captured bytes (tshark's
        # frame.len is it, as pcap's is: capture/pcap.py keeps it so too); less a Surveyor
        # header's bytes (not below 0: snoop.c's unsigned length would wrap).
        wire.append(max(orig - skip, 0))
        ts.append(sec * 1_000_000_000 + usec * 1_000)
        return None

    def _batch(
        self, frames: list[bytes], wire: list[int], ts: list[int], first: int
    ) -> RecordBatch:
        b = RecordBatch.from_packets(frames, linktype=self.link.linktype, wirelen=wire, ts_ns=ts)
        b.frame[:] += first - 1
        if not self.link.fcs_len:
            return b
        return replace(b, fcs_len=np.full(len(b), self.link.fcs_len, dtype=np.int8))


def _cut(at: int, frame: int, message: str) -> ReadIssue:
    return ReadIssue("capture.truncated_file", at, frame, message)


def _broken(at: int, frame: int, why: str) -> ReadIssue:
    message = f"record {frame} {why}; the rest of the file was not read"
    return ReadIssue("capture.corrupt_record", at, frame, message)


def _corrupt(orig: int, incl: int, rec_len: int, header_min: int) -> str:
    """What snoop.c (snoop_read_packet) finds wrong in a record header, or "": each stops
    its read with an error at that record."""
    if orig > MAX_LENGTH:
        return f"claims an original length of {orig} bytes, beyond {MAX_LENGTH}"
    if incl > MAX_LENGTH:
        return f"claims {incl} captured bytes, beyond {MAX_LENGTH}"
    if rec_len < RECORD.size + incl:
        return f"claims {incl} captured bytes in a {rec_len}-byte record"
    if incl < header_min:
        return f"has {incl} captured bytes, too few for its {header_min}-byte link header"
    return ""


def _surveyor_header(data: bytes) -> tuple[int, str]:
    """The length of the Surveyor 802.11 header starting `data` (snoop.c's
    shomiti_wireless_header: 4 bytes whose last says how many follow, at least 8: rate,
    channel, signal...), stripped as Wireshark strips it; or why it is corrupt."""
    length = data[3]
    if length < 8:
        return 0, f"has a Surveyor header length of {length}, below the 8 it needs"
    if length + 4 > len(data):
        return 0, f"has a Surveyor header of {length + 4} bytes, beyond its {len(data)}"
    return length + 4, ""
