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
from netsleuth.capture.batch import ByteViews, RecordBatch
from netsleuth.capture.chunks import (
    CHUNK_BYTES,
    MAX_RECORDS,
    ST_BAD_LENGTH,
    ST_OUT_FULL,
    Chunker,
    ReadIssue,
    StreamReader,
    add_issue,
)
from netsleuth.capture.source import ByteSource

ST_SECTION, ST_TRAILER = 3, 4  # walk_pcapng's own statuses (capture/_framing.c)
BT_IDB, BT_PB, BT_SPB, BT_ISB, BT_EPB = 1, 2, 3, 5, 6  # block types, draft section 11.1
BT_SHB = 0x0A0D0D0A
OFFSET_MASK = (1 << 62) - 1  # walk_pcapng's offsets carry the block's byte order in bit 62
BOM = 0x1A2B3C4D  # byte-order magic of the Section Header Block
OPT_TSRESOL, OPT_TSOFFSET = 9, 14  # if_tsresol, if_tsoffset (draft section 4.2)
OPT_SHB_OS = 3  # shb_os (draft section 4.1): dumpcap on Linux writes "Linux <release>"
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
        # A block larger than one read buffer is refused as corrupt: no real packet is that
        # big, and honouring the field would mean reading an unbounded amount first.
        self.max_block = chunk_bytes

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
        ch.refill(0)
        out = np.empty(MAX_RECORDS, dtype=np.int64)
        pos, frame = 0, 1
        views = ByteViews(ch.buf)
        while True:
            n, newpos, st, self.swapped = _framing.walk_pcapng(
                ch.buf.data, pos, ch.have, self.swapped, self.max_block, out.data
            )
            if n:
                batch = self._blocks(ch.buf, views, out[:n], frame, ch.base)
                if batch is not None:
                    yield batch
                    frame += len(batch)
            pos = newpos
            if st == ST_SECTION:
                done = self._section(ch.buf, pos, ch.have)
                if done > 0:
                    pos += done
                    continue
                if done < 0:
                    self._stop(
                        "capture.corrupt_record",
                        ch.base + pos,
                        frame,
                        "corrupt section header block; the rest of the file was not read",
                    )
                    return
                # done == 0: the section header is not all in the buffer yet
            elif st in (ST_BAD_LENGTH, ST_TRAILER):
                what = "an impossible length" if st == ST_BAD_LENGTH else "mismatched lengths"
                self._stop(
                    "capture.corrupt_record",
                    ch.base + pos,
                    frame,
                    f"block at byte {ch.base + pos} has {what}; the rest of the file was not read",
                )
                return
            elif st == ST_OUT_FULL:
                continue
            if ch.eof:
                if pos < ch.have:
                    self._stop(
                        "capture.truncated_file",
                        ch.base + pos,
                        frame,
                        f"the file ends inside a block ({ch.have - pos} bytes of it present)",
                    )
                return
            ch.refill(pos)
            views = ByteViews(ch.buf)
            pos = 0

    def _section(self, buf: NDArray[np.uint8], pos: int, have: int) -> int:
        """Parse the SHB at pos: >0 its length, 0 need more bytes, -1 corrupt."""
        if have - pos < 12:
            return 0
        raw = buf[pos : pos + 12].tobytes()
        (bom_le,) = struct.unpack_from("<I", raw, 8)
        if bom_le == BOM:
            self.swapped = False
        elif bom_le == 0x4D3C2B1A:
            self.swapped = True
        else:
            return -1
        order = ">" if self.swapped else "<"
        (length,) = struct.unpack_from(order + "I", raw, 4)
        if length < 28 or length % 4 or length > self.max_block:
            return -1
        if have - pos < length:
            return 0
        # Interface ids are local to a section (draft section 4.1); its options unread.
        self.interfaces = []
        self.linux = False
        return int(length)

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
        res, pow2, offset_s = 6, False, 0
        for code, at, olen in _options(block, order, 16):
            if code == OPT_TSRESOL and olen >= 1:
                r = block[at]
                res, pow2 = r & 0x7F, bool(r & 0x80)
            elif code == OPT_TSOFFSET and olen >= 8:
                (offset_s,) = struct.unpack_from(order + "q", block, at)
        return Interface(linktype, snaplen, res, pow2, offset_s)

    # One vectorized pass over a batch's blocks, field by field in the draft's order; split,
    # its dozen per-packet arrays would be handed from helper to helper.
    def _blocks(  # noqa: PLR0915 -- one pass over the block fields, see above
        self,
        buf: NDArray[np.uint8],
        v: ByteViews,
        walked: NDArray[np.int64],
        first_frame: int,
        base: int,
    ) -> RecordBatch | None:
        """The packets of one walk over `buf` (file offset `base`). capture/split_pcapng.py
        overrides it to read only the section structure, with this class's walk."""
        blocks, btype, blen, swapped = block_columns(v, walked)
        table = self._structure(buf, blocks, btype, blen, swapped, first_frame, base)
        is_pkt, short = packet_blocks(btype, blen)
        if short.any():
            at = int(np.argmax(short))  # the packets before it keep their frame numbers
            self._issue(
                "capture.corrupt_record",
                base + int(blocks[at]),
                first_frame + int(np.count_nonzero(is_pkt[:at] & ~short[:at])),
                "{n} packet block(s) shorter than their fixed fields; skipped",
                int(short.sum()),
            )
            is_pkt &= ~short
        pk = blocks[is_pkt]
        if pk.shape[0] == 0:
            return None
        # The section of each packet: SHBs before it in this batch (0: the carried one).
        section = np.cumsum(btype == BT_SHB)[is_pkt]
        t = btype[is_pkt]
        bl = blen[is_pkt]
        sw = swapped[is_pkt]
        spb = t == BT_SPB
        iface = np.where(t == BT_PB, _u16(v, pk + 8, sw), _u32(v, pk + 8, sw)).astype(np.int64)
        iface[spb] = 0
        ts_raw = (_u32(v, pk + 12, sw).astype(np.uint64) << np.uint64(32)) | _u32(
            v, pk + 16, sw
        ).astype(np.uint64)
        ts_raw[spb] = 0  # a Simple Packet Block has no timestamp
        caplen = _u32(v, pk + 20, sw).astype(np.int64)
        caplen_field = caplen.copy()  # as written: the options start after its padding
        # EPB and PB share this layout but for the PB's 16-bit interface id and drops
        # count (draft appendix A): one read, not a where() with two equal branches.
        wirelen = _u32(v, pk + 24, sw).astype(np.int64)
        data = pk + 28
        # Simple Packet Block: only the original length is stored (draft section 4.4).
        wirelen[spb] = _u32(v, pk[spb] + 8, sw[spb])
        data[spb] = pk[spb] + 12
        caplen[spb] = np.minimum(wirelen[spb], bl[spb] - 16)
        room = bl - (data - pk) - 4
        over = caplen > room
        if over.any():
            at = int(np.argmax(over))
            self._issue(
                "capture.corrupt_record",
                base + int(pk[at]),
                first_frame + at,
                "{n} packet block(s) claim more bytes than they hold; clipped to the block",
                int(over.sum()),
            )
            caplen = np.minimum(caplen, room)
        n = pk.shape[0]
        starts = np.array(table.starts, dtype=np.int64)
        ends = np.append(starts[1:], len(table.items))
        known = iface < (ends - starts)[section]
        if not known.all():
            at = int(np.argmin(known))
            self._issue(
                "capture.corrupt_record",
                base + int(pk[at]),
                first_frame + at,
                "{n} packet(s) name an interface that was never described; their link type "
                "is unknown",
                int((~known).sum()),
            )
        linktype = np.full(n, -1, dtype=np.int32)
        ts_ns = np.zeros(n, dtype=np.int64)
        if len(table.items):
            cols = table.columns()
            g = (starts[section] + iface)[known]
            linktype[known] = cols["linktype"][g]
            snap = cols["snaplen"][g]
            clip = spb[known] & (snap > 0)
            kc = caplen[known]
            kc[clip] = np.minimum(kc[clip], snap[clip])
            caplen[known] = kc
            ts, bad = _to_ns(ts_raw[known], cols["kind"][g], cols["scale"][g], cols["offset"][g])
            ts_ns[known] = ts
            if bad.any():
                at = int(np.flatnonzero(known)[np.argmax(bad)])
                self._issue(
                    "capture.corrupt_record",
                    base + int(pk[at]),
                    first_frame + at,
                    "{n} packet(s) have a timestamp that no clock gives (if_tsresol, "
                    "if_tsoffset or the value out of range); written as 0",
                    int(bad.sum()),
                )
        # Options follow the padded packet data in an EPB and in the obsolete PB, whose
        # pack_flags has epb_flags' code and layout (draft appendix A); an SPB has none.
        opts = np.where(t == BT_SPB, pk + bl - 4, data + ((caplen_field + 3) & ~3))
        return RecordBatch(
            buf=buf,
            offset=data,
            caplen=caplen,
            wirelen=wirelen,
            ts_ns=ts_ns,
            linktype=linktype,
            frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
            direction=_direction(v, opts, pk + bl - 4, sw),
            iface=iface.astype(np.uint32),
            linux=np.array(self._linux_of)[section] if any(self._linux_of) else None,
        )

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
        isb = btype == BT_ISB
        sel = (btype == BT_IDB) | (btype == BT_SHB) | isb
        before = np.zeros(int(np.count_nonzero(sel)), dtype=np.int64)
        if isb.any():  # frames before each block, for the statistics blocks to cite
            is_pkt, short = packet_blocks(btype, blen)
            framed = is_pkt & ~short  # the blocks that become frames (_blocks skips the rest)
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
                continue
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
    btype: NDArray[np.uint32], blen: NDArray[np.int64]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which blocks hold a packet, and which of those are too short for their fixed fields
    (corrupt, skipped: draft sections 4.3-4.4)."""
    is_pkt = (btype == BT_EPB) | (btype == BT_SPB) | (btype == BT_PB)
    fixed = np.where(btype == BT_SPB, 16, 32)
    return is_pkt, is_pkt & (blen < fixed)


def block_columns(
    v: ByteViews, walked: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.uint32], NDArray[np.int64], NDArray[np.bool_]]:
    """Each walked block's offset, type, total length and byte order: the walk marks each
    block's order (its section's) in bit 62 of its offset."""
    swapped = (walked >> 62) != 0
    blocks = walked & OFFSET_MASK
    btype = _u32(v, blocks, swapped)
    return blocks, btype, _u32(v, blocks + 4, swapped).astype(np.int64), swapped


def _u32(v: ByteViews, pos: NDArray[np.int64], sw: NDArray[np.bool_]) -> NDArray[np.uint32]:
    """u32 fields at pos, each in its block's byte order (one gather when all agree)."""
    if not sw.any():
        return v.le32[pos]
    if sw.all():
        return v.be32[pos]
    return np.where(sw, v.be32[pos], v.le32[pos])


def _u16(v: ByteViews, pos: NDArray[np.int64], sw: NDArray[np.bool_]) -> NDArray[np.uint16]:
    if not sw.any():
        return v.le16[pos]
    if sw.all():
        return v.be16[pos]
    return np.where(sw, v.be16[pos], v.le16[pos])


EPB_FLAGS = 2  # option code (section 4.3.1); its low two bits are the direction
MAX_OPTIONS = 8  # options looked at per packet for it (writers put it first or second)


def _direction(
    v: ByteViews, pos: NDArray[np.int64], end: NDArray[np.int64], sw: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    """Each packet's epb_flags direction, 0 where it has none: the option list walked in
    step for all packets (code, length, value padded to 32 bits; opt_endofopt ends it),
    bounded by the block and MAX_OPTIONS."""
    out = np.zeros(pos.shape[0], dtype=np.uint8)
    pos, live = pos.copy(), pos + 4 <= end
    for _ in range(MAX_OPTIONS):
        if not live.any():
            break
        at = np.where(live, pos, 0)
        code = _u16(v, at, sw).astype(np.int64)
        size = _u16(v, at + 2, sw).astype(np.int64)
        live &= (code != 0) & (pos + 4 + size <= end)
        hit = live & (code == EPB_FLAGS) & (size == 4)
        out[hit] = (_u32(v, at + 4, sw)[hit] & 3).astype(np.uint8)
        live &= ~hit
        pos = pos + 4 + ((size + 3) & ~3)
    return out


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
    )


def _to_ns(
    raw: NDArray[np.uint64],
    kind: NDArray[np.int64],
    scale: NDArray[np.int64],
    offset: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Nanoseconds since 1970 per packet and which could not be had (left 0): every step is
    checked against int64 overflow first, so no input makes NumPy wrap or raise."""
    out = np.zeros(raw.shape[0], dtype=np.int64)
    bad = kind == TS_BAD
    room = (INT64_MAX - np.abs(offset)).astype(np.uint64)  # |ns| before the offset
    mul = kind == TS_MUL
    if mul.any():
        sc = scale[mul].astype(np.uint64)
        ok = raw[mul] <= room[mul] // sc
        vals = np.where(ok, raw[mul], 0).astype(np.int64) * scale[mul]
        out[mul] = vals
        bad[mul] |= ~ok
    div = kind == TS_DIV
    if div.any():
        q = raw[div] // scale[div].astype(np.uint64)
        ok = q <= room[div]
        out[div] = np.where(ok, q, 0).astype(np.int64)
        bad[div] |= ~ok
    p2 = kind == TS_POW2
    if p2.any():
        # 2**-res second units: rare (some hardware); float keeps it simple and is exact to
        # well under a nanosecond for any plausible date.
        f = raw[p2].astype(np.float64) * (1e9 / np.exp2(scale[p2].astype(np.float64)))
        ok = f < room[p2].astype(np.float64)
        out[p2] = np.where(ok, f, 0).astype(np.int64)
        bad[p2] |= ~ok
    out = np.where(bad, 0, out + offset)
    return out, bad
