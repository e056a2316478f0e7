"""pcapng (draft-ietf-opsawg-pcapng): SHB, IDB, EPB, SPB and the obsolete PB; other block
types are skipped. Several sections and interfaces with different link types in one file."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture import _framing
from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.chunks import (
    CHUNK_BYTES,
    MAX_RECORDS,
    ST_BAD_LENGTH,
    ST_NEED_MORE,
    ST_OUT_FULL,
    Chunker,
    ReadIssue,
    StreamReader,
    Walk,
    add_issue,
)
from netsleuth.capture.source import ByteSource

ST_SECTION, ST_TRAILER = 3, 4  # walk_pcapng's own statuses (capture/_framing.c)
BT_IDB, BT_PB, BT_SPB, BT_ISB, BT_EPB = 1, 2, 3, 5, 6  # block types, draft section 11.1
# Blocks that hold no packet but that Wireshark numbers as frames all the same: custom blocks
# (draft section 4.8, copiable or not) and systemd journal export blocks (section 11.1,
# 0x00000009). tshark 4.0 numbers them in the packet list, so a packet's frame number here
# counts them too, or every frame after one would be a number lower than Wireshark's.
BT_JOURNAL, BT_CUSTOM, BT_CUSTOM_NOCOPY = 0x00000009, 0x00000BAD, 0x40000BAD
FRAME_ONLY = np.array([BT_JOURNAL, BT_CUSTOM, BT_CUSTOM_NOCOPY], dtype=np.uint32)
BT_SHB = 0x0A0D0D0A
OFFSET_MASK = (1 << 62) - 1  # walk_pcapng's offsets carry the block's byte order in bit 62
# The rows of walk_pcapng's output (capture/_framing.c), a column per block.
W_OFFSET, W_TYPE, W_LEN, W_IFACE, W_TS, W_CAPLEN, W_WIRE, W_FLAGS = range(8)
WALK_ROWS = 8
OPT_TSRESOL, OPT_TSOFFSET = 9, 14  # if_tsresol, if_tsoffset (draft section 4.2)
OPT_FCSLEN = 13  # if_fcslen (draft section 4.2)
# epb_flags (draft section 4.3.1): the direction in bits 0-1; the FCS length in octets in
# bits 5-8, 0 where not given.
FLAGS_DIRECTION, FLAGS_FCS, FLAGS_FCS_SHIFT = 0x3, 0x1E0, 5
OPT_SHB_OS = 3  # shb_os (draft section 4.1): dumpcap on Linux writes "Linux <release>"
# The SHB's major version (draft section 4.1): another changes the format so that a reader
# of version 1 "could not read the new format"; such a section is skipped to the next SHB.
SHB_MAJOR = 1
# isb_ifdrop (packets the interface dropped for lack of resources) and isb_osdrop (dropped
# by the operating system), both counted from the capture's start (draft section 4.6).
OPT_IFDROP, OPT_OSDROP = 5, 7


# Interfaces per section at most: the interface id is 32 bits, but no capturing host has
# more than a few thousand; 5M IDBs in a 237 KB file cost 470 MB before.
MAX_INTERFACES = 65536
# if_tsoffset beyond +-2^32 s (136 years) is no real clock offset, and it would overflow
# nanoseconds in int64 (draft section 4.2: a signed 64-bit number of seconds).
MAX_TSOFFSET = 1 << 32
INT64_MAX = (1 << 63) - 1
# How a raw timestamp turns into nanoseconds: multiply, divide, 2**-res float, or unusable.
TS_MUL, TS_DIV, TS_POW2, TS_BAD = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Interface:
    linktype: int
    snaplen: int
    # Timestamp units: 10**-res or 2**-res seconds (if_tsresol); offset in seconds.
    res: int = 6
    res_pow2: bool = False
    offset_s: int = 0
    # Octets of FCS its frames end in, as its if_fcslen says (_fcs_octets); -1 where it
    # says nothing.
    fcs_len: int = -1

    def clock(self) -> tuple[int, int]:
        """(TS_* kind, scale): raw * scale, raw // scale, raw * 1e9 / 2**scale, or none.
        A resolution finer than 2**-63 s or 10**-19 s, or an absurd offset, is refused
        (if_tsresol 127 raised OverflowError and ended the whole run)."""
        if abs(self.offset_s) >= MAX_TSOFFSET:
            return TS_BAD, 0
        if self.res_pow2:
            return (TS_POW2, self.res) if self.res <= 63 else (TS_BAD, 0)
        if self.res <= 9:
            return TS_MUL, 10 ** (9 - self.res)
        return (TS_DIV, 10 ** (self.res - 9)) if self.res <= 19 else (TS_BAD, 0)


@dataclass(frozen=True, slots=True)
class Section:
    """Where a reader is in a file, all that a reader entering the file there needs: the
    byte order of the blocks, the interfaces of the section described so far (ids are
    positions in this tuple), the section's number, whether its header names Linux and
    whether its blocks are skipped (a major version other than 1)."""

    swapped: bool = False
    interfaces: tuple[Interface, ...] = ()
    number: int = 0  # section header blocks before it and its own (PcapngReader.section)
    linux: bool = False  # its header's shb_os names Linux (PcapngReader.linux)
    skipped: bool = False  # its header's major version is not 1 (PcapngReader.skipping)


class _Table:
    """The interfaces of the sections a batch covers, as columns indexed by (section start +
    interface id): looked up per packet in one gather, never scanned per interface."""

    def __init__(self, carried: list[Interface]) -> None:
        self.items = list(carried)
        self.starts = [0]  # where each section of the batch begins in items

    def new_section(self) -> None:
        self.starts.append(len(self.items))

    def section_size(self) -> int:
        return len(self.items) - self.starts[-1]

    def current(self) -> list[Interface]:
        return self.items[self.starts[-1] :]

    def columns(self) -> dict[str, NDArray[np.int64]]:
        clocks = [i.clock() for i in self.items]
        return {
            "linktype": np.array([i.linktype for i in self.items], dtype=np.int64),
            "snaplen": np.array([i.snaplen for i in self.items], dtype=np.int64),
            "fcs_len": np.array([i.fcs_len for i in self.items], dtype=np.int64),
            "kind": np.array([c[0] for c in clocks], dtype=np.int64),
            "scale": np.array([c[1] for c in clocks], dtype=np.int64),
            "offset": np.array(
                [
                    i.offset_s * 1_000_000_000 if c[0] != TS_BAD else 0
                    for i, c in zip(self.items, clocks, strict=True)
                ],
                dtype=np.int64,
            ),
        }


def first_section_fault(head: bytes, max_block: int = CHUNK_BYTES) -> str | None:
    """What makes a file's first block, its section header, unreadable (its first 12
    bytes: `head`), or None. Such a file has no block that can be located: no readable
    pcapng file (draft-ietf-opsawg-pcapng section 4.1; tshark: "isn't a capture file"),
    refused with one line and exit 2 as a pcap file with a cut header is, where it was
    read as a file of no packet with a capture.corrupt_record and exit 0. A later
    section's header stays a finding: the packets before it are read."""
    if len(head) < 12:
        return f"truncated pcapng section header ({len(head)} of 28 bytes)"
    order = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}.get(head[8:12])
    if order is None:
        return (
            f"corrupt pcapng section header: byte-order magic {head[8:12].hex()}, "
            "neither 1a2b3c4d nor 4d3c2b1a"
        )
    (length,) = struct.unpack(order + "I", head[4:8])
    if length < 28 or length % 4 or length > max_block:
        return f"corrupt pcapng section header: an impossible length ({length})"
    return None


class PcapngReader(StreamReader):
    kind = "pcapng"

    def __init__(
        self, source: ByteSource, *, compressed: bool = False, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        super().__init__(source, compressed=compressed)
        self.swapped = False
        self.interfaces: list[Interface] = []  # of the current section
        self.section = 0  # section header blocks read so far: the current section's number
        # Whether the current section's header says a Linux host wrote it (shb_os); and of
        # the sections a batch's blocks are in, in order, the same (RecordBatch.linux).
        self.linux = False
        self._linux_of: list[bool] = []
        # Whether the current section's blocks are skipped (its SHB's major version is not
        # SHB_MAJOR); and which blocks of the batch walked last are (_structure).
        self.skipping = False
        self._skipped: NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        # Frame numbers the last walk took (_blocks), and all taken so far (frames_read).
        self.framed = 0
        self.frames_used = 0
        # A block larger than one read buffer is refused as corrupt: no real packet is that
        # big, and honouring the field would mean reading an unbounded amount first.
        self.max_block = chunk_bytes
        # Stop before the first buffer that starts at or after this file offset (a range
        # of a split file: capture/split_pcapng.py); where it stopped, and in what state.
        self.stop_at: int | None = None
        self.stopped: tuple[int, Section] | None = None
        self.start = source.consumed  # the file offset it reads from

    def frames_read(self) -> int:
        """Frame numbers used so far: the packets and the blocks numbered as frames."""
        return self.frames_used

    def state(self) -> Section:
        """What a reader entering the file where this one is needs (between walks)."""
        return Section(
            self.swapped, tuple(self.interfaces), self.section, self.linux, self.skipping
        )

    def enter(self, section: Section) -> None:
        """Go on from a place where another reader was in `section` (state())."""
        self.swapped = section.swapped
        self.interfaces = list(section.interfaces)
        self.section = section.number
        self.linux = section.linux
        self.skipping = section.skipped

    def _entering(self, base: int) -> bool:
        """A buffer starting at file offset `base` has been read and walked (a block was
        found in it) but none of its blocks taken yet: whether to stop before them
        (stop_at). So a range's reader reads one buffer past its range, the next range's
        first."""
        if self.stop_at is None or base < self.stop_at:
            return False
        self.stopped = (base, self.state())
        return True

    def _issue(self, id_: str, offset: int, frame: int, message: str, count: int = 1) -> None:
        """Something skipped or mended; the reading goes on. `message` says "{n}" for
        `count`: issues alike from every buffer add up (add_issue)."""
        add_issue(self.issues, ReadIssue(id_, offset, frame, message, stops=False, count=count))

    def _stop(self, id_: str, offset: int, frame: int, message: str) -> None:
        """Something the reading cannot go past: the rest of the file is not read."""
        self.issues.append(ReadIssue(id_, offset, frame, message))

    def _batches(self) -> Iterator[RecordBatch]:
        """Segments of one buffer are merged into batches of up to MAX_RECORDS: a file
        whose sections flip byte order (each flip ends a walk) still makes few batches."""
        pending: list[RecordBatch] = []
        held = 0
        for seg in self._segments():
            if pending and (seg.buf is not pending[0].buf or held + len(seg) > MAX_RECORDS):
                yield _merge(pending)
                pending, held = [], 0
            pending.append(seg)
            held += len(seg)
        if pending:
            yield _merge(pending)

    def _segments(self) -> Iterator[RecordBatch]:
        ch = Chunker(self.source, self.max_block)
        out = np.empty((WALK_ROWS, MAX_RECORDS), dtype=np.int64)
        order = [self.swapped]  # the byte order the walk goes on in

        def walk(pos: int, at: int) -> tuple[int, int, int]:
            n, pos, st, order[0] = _framing.walk_pcapng(
                ch.buf.data, pos, ch.have, order[0], self.max_block, out.data, at
            )
            return n, pos, st

        w = Walk(walk)
        ch.refill(0, w.step)  # each piece of the buffer walked as it arrives
        frame, seen = 1, -1
        while True:
            w.go()  # the rest of the buffer, or at once where the walk stopped
            n, w.n = w.n, 0
            if n and ch.base != seen:  # the first blocks of a new buffer
                seen = ch.base
                if self._entering(ch.base):
                    return
            self.swapped = order[0]  # its last block's: where the next walk goes on
            if n:
                batch = self._blocks(ch.buf, out[:, :n], frame, ch.base)
                frame += self.framed  # its packets and the blocks numbered as frames
                self.frames_used = frame - 1
                if batch is not None:
                    yield batch
            again = self._stopped_at(ch, w, frame)
            if again is None:
                return
            if again:
                continue
            if ch.eof:
                if w.pos < ch.have:
                    self._stop(
                        "capture.truncated_file",
                        ch.base + w.pos,
                        frame,
                        f"the file ends inside a block ({ch.have - w.pos} bytes of it present)",
                    )
                return
            keep, w.pos = w.pos, 0
            ch.refill(keep, w.step)

    def _stopped_at(self, ch: Chunker, w: Walk, frame: int) -> bool | None:
        """What the walk stopped at: True to walk on in this buffer (its output was full),
        False for more bytes, None for what stops the reading (reported)."""
        st, pos = w.status, w.pos
        w.status = ST_NEED_MORE
        if st == ST_SECTION:  # a section header with neither byte-order magic, or too short
            what = "corrupt section header block; the rest of the file was not read"
        elif st in (ST_BAD_LENGTH, ST_TRAILER):
            how = "an impossible length" if st == ST_BAD_LENGTH else "mismatched lengths"
            what = f"block at byte {ch.base + pos} has {how}; the rest of the file was not read"
        else:
            return st == ST_OUT_FULL
        self._stop("capture.corrupt_record", ch.base + pos, frame, what)
        return None

    def _isb(self, block: bytes, swapped: bool, frame: int, offset: int) -> None:
        """An interface statistics block: its drop counters (isb_ifdrop + isb_osdrop),
        kept per interface as the latest block gives them: they count from the capture's
        start (draft section 4.6), and dumpcap writes one block per interface at the end."""
        order = ">" if swapped else "<"
        if len(block) < 24:
            return  # no interface id: nothing to keep
        (iface,) = struct.unpack_from(order + "I", block, 8)
        drops = 0
        for code, at, olen in _options(block, order, 20):
            if code in (OPT_IFDROP, OPT_OSDROP) and olen == 8:
                drops += struct.unpack_from(order + "Q", block, at)[0]
        self.drops.put((self.section, iface), (drops, frame, offset))

    def _idb(self, block: bytes, swapped: bool) -> Interface:
        order = ">" if swapped else "<"
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", block, 8)
        res, pow2, offset_s, fcs = 6, False, 0, -1
        for code, at, olen in _options(block, order, 16):
            if code == OPT_TSRESOL and olen >= 1:
                r = block[at]
                res, pow2 = r & 0x7F, bool(r & 0x80)
            elif code == OPT_TSOFFSET and olen >= 8:
                (offset_s,) = struct.unpack_from(order + "q", block, at)
            elif code == OPT_FCSLEN and olen == 1 and fcs < 0:  # tshark: the first, 1 byte
                fcs = _fcs_octets(block[at])
        return Interface(linktype, snaplen, res, pow2, offset_s, fcs)

    def _blocks(
        self,
        buf: NDArray[np.uint8],
        walked: NDArray[np.int64],
        first_frame: int,
        base: int,
    ) -> RecordBatch | None:
        """The packets of one walk over `buf` (file offset `base`): `walked` is the walk's
        columns (_framing.walk_pcapng). capture/split_pcapng.py overrides it to read only
        the section structure, with this class's walk."""
        blocks, btype, blen, swapped = block_columns(walked)
        table = self._structure(buf, blocks, btype, blen, swapped, first_frame, base)
        is_pkt, short, framed = packet_blocks(btype, blen, self._skipped)
        self.framed = int(np.count_nonzero(framed))
        if short.any():
            at = int(np.argmax(short))  # the packets before it keep their frame numbers
            self._issue(
                "capture.corrupt_record",
                base + int(blocks[at]),
                first_frame + int(np.count_nonzero(framed[:at])),
                "{n} packet block(s) shorter than their fixed fields; skipped",
                int(short.sum()),
            )
            is_pkt &= ~short
        if not is_pkt.any():
            return None
        every = bool(is_pkt.all())  # most batches: one block, one packet (no copy then)
        cols = walked if every else walked[:, is_pkt]
        if every:
            frames = np.arange(first_frame, first_frame + self.framed, dtype=np.int64)
        else:
            frames = (first_frame - 1 + np.cumsum(framed, dtype=np.int64))[is_pkt]
        fields = _Fields(cols, blen if every else blen[is_pkt], frames, base)
        if fields.over.any():
            at = int(np.argmax(fields.over))
            self._issue(
                "capture.corrupt_record",
                base + int(fields.pk[at]),
                int(frames[at]),
                "{n} packet block(s) claim more bytes than they hold; clipped to the block",
                int(fields.over.sum()),
            )
        # The section of each packet: SHBs before it in this batch (0: the carried one).
        shb = btype == BT_SHB
        section = np.cumsum(shb)[is_pkt] if shb.any() else np.zeros(fields.n, np.int64)
        linktype, ts_ns, fcs_len = self._per_interface(table, fields, section)
        return RecordBatch(
            buf=buf,
            offset=fields.data,
            caplen=fields.caplen,
            wirelen=fields.wirelen,
            ts_ns=ts_ns,
            linktype=linktype,
            frame=frames,
            direction=(fields.flags & FLAGS_DIRECTION).astype(np.uint8),
            iface=fields.iface,
            linux=np.array(self._linux_of)[section] if any(self._linux_of) else None,
            fcs_len=fcs_len,
        )

    def _per_interface(
        self, table: _Table, f: _Fields, section: NDArray[np.int64]
    ) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int8] | None]:
        """Each packet's link type, time and FCS length from its interface's description
        (whose snap length clips an SPB's data, which has no captured length: draft
        section 4.4) and its own flags (_declared_fcs)."""
        starts = np.array(table.starts, dtype=np.int64)
        ends = np.append(starts[1:], len(table.items))
        known = f.iface < (ends - starts)[section]
        if not known.all():
            at = int(np.argmin(known))
            self._issue(
                "capture.corrupt_record",
                f.base + int(f.pk[at]),
                int(f.frames[at]),
                "{n} packet(s) name an interface that was never described; their link type "
                "is unknown",
                int((~known).sum()),
            )
        linktype = np.full(f.n, -1, dtype=np.int32)
        ts_ns = np.zeros(f.n, dtype=np.int64)
        if not table.items:
            return linktype, ts_ns, None
        cols = table.columns()
        g = (starts[section] + f.iface)[known]
        linktype[known] = cols["linktype"][g]
        if f.spb is not None:
            snap = cols["snaplen"][g]
            clip = f.spb[known] & (snap > 0)
            kc = f.caplen[known]
            kc[clip] = np.minimum(kc[clip], snap[clip])
            f.caplen[known] = kc
        ts, bad = _to_ns(f.ts_raw[known], g, cols["kind"], cols["scale"], cols["offset"])
        ts_ns[known] = ts
        if bad.any():
            at = int(np.flatnonzero(known)[np.argmax(bad)])
            self._issue(
                "capture.corrupt_record",
                f.base + int(f.pk[at]),
                int(f.frames[at]),
                "{n} packet(s) have a timestamp that no clock gives (if_tsresol, "
                "if_tsoffset or the value out of range); written as 0",
                int(bad.sum()),
            )
        return linktype, ts_ns, _declared_fcs(cols["fcs_len"], g, known, f.flags)

    def _structure(  # noqa: PLR0917 - the batch's columns, passed on from _blocks
        self,
        buf: NDArray[np.uint8],
        blocks: NDArray[np.int64],
        btype: NDArray[np.uint32],
        blen: NDArray[np.int64],
        swapped: NDArray[np.bool_],
        first_frame: int,
        base: int,
    ) -> _Table:
        """Section headers and interface blocks of this batch, in file order."""
        table = _Table(self.interfaces)
        self._linux_of = [self.linux]
        dropped = 0
        shb = btype == BT_SHB
        # Which sections are skipped: the one carried in, then each of this batch's SHBs.
        skip_of = [self.skipping]
        for b, sw in zip(blocks[shb].tolist(), swapped[shb].tolist(), strict=True):
            skip_of.append(
                int.from_bytes(buf[b + 12 : b + 14].tobytes(), "big" if sw else "little")
                != SHB_MAJOR
            )
        self._skipped = np.array(skip_of)[np.cumsum(shb)]
        isb = btype == BT_ISB
        sel = (btype == BT_IDB) | shb | isb
        before = np.zeros(int(np.count_nonzero(sel)), dtype=np.int64)
        if isb.any() or any(skip_of):  # frames before each block, for the issues to cite
            framed = packet_blocks(btype, blen, self._skipped)[2]  # the frames' blocks
            before = np.cumsum(framed, dtype=np.int64)[sel] - framed[sel]
        for b, kind, bl, sw, n in zip(
            blocks[sel].tolist(),
            btype[sel].tolist(),
            blen[sel].tolist(),
            swapped[sel].tolist(),
            before.tolist(),
            strict=True,
        ):
            if kind == BT_SHB:
                table.new_section()  # interface ids are local to a section (section 4.1)
                self.section += 1
                self.linux = _linux_os(buf[b : b + bl].tobytes(), ">" if sw else "<")
                self._linux_of.append(self.linux)
                self.skipping = skip_of[len(self._linux_of) - 1]
                if self.skipping:
                    self._issue(
                        "capture.corrupt_record",
                        base + b,
                        first_frame + n,
                        f"{{n}} section(s) of a pcapng major version other than {SHB_MAJOR} "
                        "skipped to the next section header",
                    )
                continue
            if self.skipping:
                continue  # a skipped section's interfaces and statistics are not read
            if kind == BT_ISB:
                self._isb(buf[b : b + bl].tobytes(), sw, first_frame + n - 1, base + b)
                continue
            if bl < 20:
                self._issue(
                    "capture.corrupt_record",
                    base + b,
                    first_frame,
                    "{n} interface description block(s) too short; interface ignored",
                )
                table.items.append(Interface(-1, 0))  # keeps the later ids in place
            elif table.section_size() >= MAX_INTERFACES:
                dropped += 1
            else:
                table.items.append(self._idb(buf[b : b + bl].tobytes(), sw))
        if dropped:
            self._issue(
                "capture.corrupt_record",
                base + int(blocks[0]),
                first_frame,
                f"{{n}} interface block(s) beyond {MAX_INTERFACES} in one section ignored",
                dropped,
            )
        self.interfaces = table.current()
        return table


def _linux_os(shb: bytes, order: str) -> bool:
    """Whether a section header's shb_os names Linux (its options follow the byte-order
    magic, the version and the section length: 24 bytes in). A Linux host fills every
    IPv4 header checksum in software, so its captures show no checksum offload
    (checks/ipv4_checksum.py); a file that does not say is not taken for one."""
    for code, at, olen in _options(shb, order, 24):
        if code == OPT_SHB_OS:
            return shb[at : at + olen].startswith(b"Linux")
    return False


def _fcs_octets(value: int) -> int:
    """An if_fcslen value in octets, as tshark 4.0 reads it: the draft gives it in bits
    (section 4.2), but a value below 8 is taken for octets, so 4 and 32 both mean the
    4-byte Ethernet FCS (and 12 one octet, the bits rounded down)."""
    return value if value < 8 else value // 8


def _declared_fcs(
    by_iface: NDArray[np.int64],
    g: NDArray[np.int64],
    known: NDArray[np.bool_],
    flags: NDArray[np.int64],
) -> NDArray[np.int8] | None:
    """Each packet's FCS length in octets (RecordBatch.fcs_len): its epb_flags' where they
    give one (bits 5-8, already octets: draft section 4.3.1), else its interface's
    if_fcslen (`by_iface`, indexed by `g` for the packets of a `known` interface), else 0;
    None where no interface and no packet declares one. As tshark 4.0 reads them: the
    flags override the interface, and flags of 0 say nothing."""
    own = flags & FLAGS_FCS
    if not (by_iface > 0).any() and not own.any():
        return None
    own >>= FLAGS_FCS_SHIFT
    out = np.zeros(flags.shape[0], dtype=np.int64)
    out[known] = np.maximum(by_iface[g], 0)
    return np.where(own != 0, own, out).astype(np.int8)


def _options(block: bytes, order: str, start: int) -> Iterator[tuple[int, int, int]]:
    """A block's options from `start` (draft section 3.5): (code, value offset, value
    length) each, up to opt_endofopt or the first that runs past the block's trailer."""
    p, end = start, len(block) - 4
    while p + 4 <= end:
        code, olen = struct.unpack_from(order + "HH", block, p)
        if code == 0 or p + 4 + olen > end:
            return
        yield code, p + 4, olen
        p += 4 + ((olen + 3) & ~3)


def packet_blocks(
    btype: NDArray[np.uint32], blen: NDArray[np.int64], skipped: NDArray[np.bool_]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Outside skipped sections: which blocks hold a packet, which of those are too short
    for their fixed fields (corrupt, skipped: draft sections 4.3-4.4), and which take a
    frame number (the packets whole enough to read, and the blocks Wireshark numbers as
    frames though they hold none: FRAME_ONLY)."""
    is_pkt = ((btype == BT_EPB) | (btype == BT_SPB) | (btype == BT_PB)) & ~skipped
    short = is_pkt & (blen < np.where(btype == BT_SPB, 16, 32))
    framed = (is_pkt & ~short) | (np.isin(btype, FRAME_ONLY) & ~skipped)
    return is_pkt, short, framed


def block_columns(
    walked: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.uint32], NDArray[np.int64], NDArray[np.bool_]]:
    """Each walked block's offset, type, total length and byte order: the walk marks each
    block's order (its section's) in bit 62 of its offset."""
    swapped = (walked[W_OFFSET] >> 62) != 0
    blocks = walked[W_OFFSET] & OFFSET_MASK
    return blocks, walked[W_TYPE].astype(np.uint32), walked[W_LEN], swapped


class _Fields:
    """The packet blocks' fields, from the walk's columns of them (_framing.walk_pcapng):
    where each packet's data starts and how many bytes of it the block holds. The walk's
    output array is the reader's, written again by its next walk while the batch made of
    these is still held (_batches): every column kept is a new array."""

    def __init__(
        self, cols: NDArray[np.int64], blen: NDArray[np.int64], frames: NDArray[np.int64], base: int
    ) -> None:
        self.frames, self.base = frames, base  # each packet's frame number, where its block is
        self.pk = cols[W_OFFSET] & OFFSET_MASK
        self.n = int(self.pk.shape[0])
        self.iface = cols[W_IFACE].astype(np.uint32)
        self.ts_raw = cols[W_TS].view(np.uint64)  # read at once (_per_interface)
        self.wirelen = cols[W_WIRE].copy()
        self.flags = cols[W_FLAGS]  # read at once (the direction, _declared_fcs)
        self.data = self.pk + 28  # EPB and PB share this layout (draft appendix A)
        caplen = cols[W_CAPLEN].copy()
        spb = cols[W_TYPE] == BT_SPB
        self.spb: NDArray[np.bool_] | None = None
        if spb.any():
            # Simple Packet Block: only the original length is stored (draft section 4.4);
            # its data is what the block holds of the packet, from byte 12.
            self.spb = spb
            self.data[spb] = self.pk[spb] + 12
            caplen[spb] = np.minimum(self.wirelen[spb], blen[spb] - 16)
        room = blen - (self.data - self.pk) - 4
        self.over = caplen > room
        self.caplen = np.minimum(caplen, room) if self.over.any() else caplen


def _merge(parts: list[RecordBatch]) -> RecordBatch:
    if len(parts) == 1:
        return parts[0]

    def joined(name: str, dtype: type[np.generic]) -> NDArray[Any] | None:
        """An optional column (None where a part's format does not say: 0 then)."""
        cols = [getattr(p, name) for p in parts]
        if all(c is None for c in cols):
            return None
        return np.concatenate(
            [np.zeros(len(p), dtype) if c is None else c for p, c in zip(parts, cols, strict=True)]
        )

    names = ("offset", "caplen", "wirelen", "ts_ns", "linktype", "frame")
    cols: dict[str, Any] = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
    return RecordBatch(
        buf=parts[0].buf,
        **cols,
        direction=joined("direction", np.uint8),
        iface=joined("iface", np.uint32),
        linux=joined("linux", np.bool_),
        fcs_len=joined("fcs_len", np.int8),
    )


def _to_ns(
    raw: NDArray[np.uint64],
    g: NDArray[np.int64],
    kind: NDArray[np.int64],
    scale: NDArray[np.int64],
    offset: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Nanoseconds since 1970 per packet and which could not be had (left 0), each by the
    clock of its interface `g` (kind, scale, offset: per interface); one pass when the
    interfaces all have the same clock, decided over them, not over the packets."""
    if (kind == kind[0]).all() and (scale == scale[0]).all() and (offset == offset[0]).all():
        return _clock_ns(raw, int(kind[0]), scale[:1], offset[:1])
    kind, scale, offset = kind[g], scale[g], offset[g]
    out = np.zeros(raw.shape[0], dtype=np.int64)
    bad = np.ones(raw.shape[0], dtype=np.bool_)
    for k in (TS_MUL, TS_DIV, TS_POW2):
        m = kind == k
        if m.any():
            out[m], bad[m] = _clock_ns(raw[m], k, scale[m], offset[m])
    return out, bad


def _clock_ns(
    raw: NDArray[np.uint64], kind: int, scale: NDArray[np.int64], offset: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """_to_ns for packets of one kind of clock (`scale` and `offset`: theirs, or one for
    all): every step is checked against int64 overflow first, so no input makes NumPy wrap
    or raise."""
    room = (INT64_MAX - np.abs(offset)).astype(np.uint64)  # |ns| before the offset
    if kind == TS_MUL:
        ok = raw <= room // scale.astype(np.uint64)
        ns = np.where(ok, raw, 0).astype(np.int64) * scale
    elif kind == TS_DIV:
        q = raw // scale.astype(np.uint64)
        ok = q <= room
        ns = np.where(ok, q, 0).astype(np.int64)
    elif kind == TS_POW2:
        # 2**-res second units: rare (some hardware); float keeps it simple and is exact to
        # well under a nanosecond for any plausible date.
        f = raw.astype(np.float64) * (1e9 / np.exp2(scale.astype(np.float64)))
        ok = f < room.astype(np.float64)
        ns = np.where(ok, f, 0).astype(np.int64)
    else:
        ok = np.zeros(raw.shape[0], dtype=np.bool_)
        ns = np.zeros(raw.shape[0], dtype=np.int64)
    return np.where(ok, ns + offset, 0), ~ok
