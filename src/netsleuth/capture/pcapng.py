"""pcapng (draft-ietf-opsawg-pcapng): SHB, IDB, EPB, SPB and the obsolete PB; other block
types are skipped. Several sections and interfaces with different link types in one file."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture import _framing
from netsleuth.capture.batch import ByteViews, RecordBatch
from netsleuth.capture.chunks import (
    CHUNK_BYTES,
    MAX_RECORDS,
    Chunker,
    ReadIssue,
    StreamReader,
)
from netsleuth.capture.source import ByteSource

ST_OUT_FULL, ST_BAD_LENGTH, ST_SECTION, ST_TRAILER = 1, 2, 3, 4
BT_IDB, BT_PB, BT_SPB, BT_EPB = 1, 2, 3, 6  # block types, draft section 11.1
BOM = 0x1A2B3C4D  # byte-order magic of the Section Header Block
OPT_TSRESOL, OPT_TSOFFSET = 9, 14  # if_tsresol, if_tsoffset (draft section 4.2)


@dataclass(frozen=True, slots=True)
class Interface:
    linktype: int
    snaplen: int
    # Timestamp units: 10**-res or 2**-res seconds (if_tsresol); offset in seconds.
    res: int = 6
    res_pow2: bool = False
    offset_s: int = 0


class PcapngReader(StreamReader):
    kind = "pcapng"

    def __init__(
        self, source: ByteSource, *, compressed: bool = False, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.source = source
        self.compressed = compressed
        self.name = source.name
        self.issues: list[ReadIssue] = []
        self.records = 0
        self.swapped = False
        self.interfaces: list[Interface] = []
        # A block larger than one read buffer is refused as corrupt: no real packet is that
        # big, and honouring the field would mean reading an unbounded amount first.
        self.max_block = chunk_bytes

    def _issue(self, id_: str, offset: int, frame: int, message: str) -> None:
        self.issues.append(ReadIssue(id_, offset, frame, message))

    def _batches(self) -> Iterator[RecordBatch]:
        ch = Chunker(self.source, self.max_block)
        ch.refill(0)
        out = np.empty(MAX_RECORDS, dtype=np.int64)
        pos, frame = 0, 1
        views = ByteViews(ch.buf)
        while True:
            n, newpos, st = _framing.walk_pcapng(
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
                    self._issue(
                        "capture.corrupt_record",
                        ch.base + pos,
                        frame,
                        "corrupt section header block; the rest of the file was not read",
                    )
                    return
                # done == 0: the section header is not all in the buffer yet
            elif st in (ST_BAD_LENGTH, ST_TRAILER):
                what = "an impossible length" if st == ST_BAD_LENGTH else "mismatched lengths"
                self._issue(
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
                    self._issue(
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
        # Interface ids are local to a section (draft section 4.1).
        self.interfaces = []
        return int(length)

    def _idb(self, block: bytes) -> Interface:
        order = ">" if self.swapped else "<"
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", block, 8)
        res, pow2, offset_s = 6, False, 0
        p, end = 16, len(block) - 4
        while p + 4 <= end:
            code, olen = struct.unpack_from(order + "HH", block, p)
            if code == 0 or p + 4 + olen > end:
                break
            if code == OPT_TSRESOL and olen >= 1:
                r = block[p + 4]
                res, pow2 = r & 0x7F, bool(r & 0x80)
            elif code == OPT_TSOFFSET and olen >= 8:
                (offset_s,) = struct.unpack_from(order + "q", block, p + 4)
            p += 4 + ((olen + 3) & ~3)
        return Interface(linktype, snaplen, res, pow2, offset_s)

    def _blocks(
        self,
        buf: NDArray[np.uint8],
        v: ByteViews,
        blocks: NDArray[np.int64],
        first_frame: int,
        base: int,
    ) -> RecordBatch | None:
        u32 = v.be32 if self.swapped else v.le32
        u16 = v.be16 if self.swapped else v.le16
        btype = u32[blocks]
        blen = u32[blocks + 4].astype(np.int64)
        for b in blocks[btype == BT_IDB]:
            bl = int(u32[b + 4])
            if bl < 20:
                self._issue(
                    "capture.corrupt_record",
                    base + int(b),
                    first_frame,
                    "interface description block too short; interface ignored",
                )
                continue
            self.interfaces.append(self._idb(buf[b : b + bl].tobytes()))
        is_pkt = (btype == BT_EPB) | (btype == BT_SPB) | (btype == BT_PB)
        # A packet block too short for its fixed fields is corrupt (draft sections 4.3-4.4).
        fixed = np.where(btype == BT_SPB, 16, 32)
        short = is_pkt & (blen < fixed)
        if short.any():
            self._issue(
                "capture.corrupt_record",
                base + int(blocks[short][0]),
                first_frame,
                f"{int(short.sum())} packet block(s) shorter than their fixed fields; skipped",
            )
            is_pkt &= ~short
        pk = blocks[is_pkt]
        if pk.shape[0] == 0:
            return None
        t = btype[is_pkt]
        bl = blen[is_pkt]
        spb = t == BT_SPB
        iface = np.where(t == BT_PB, u16[pk + 8], u32[pk + 8]).astype(np.int64)
        iface[spb] = 0
        ts_raw = (u32[pk + 12].astype(np.uint64) << np.uint64(32)) | u32[pk + 16].astype(np.uint64)
        caplen = u32[pk + 20].astype(np.int64)
        wirelen = np.where(t == BT_PB, u32[pk + 24], u32[pk + 24]).astype(np.int64)
        data = pk + 28
        # Simple Packet Block: only the original length is stored (draft section 4.4).
        wirelen[spb] = u32[pk[spb] + 8]
        data[spb] = pk[spb] + 12
        caplen[spb] = np.minimum(wirelen[spb], bl[spb] - 16)
        room = bl - (data - pk) - 4
        over = caplen > room
        if over.any():
            self._issue(
                "capture.corrupt_record",
                base + int(pk[over][0]),
                first_frame,
                f"{int(over.sum())} packet block(s) claim more bytes than they hold; "
                "clipped to the block",
            )
            caplen = np.minimum(caplen, room)
        n = pk.shape[0]
        linktype = np.full(n, -1, dtype=np.int32)
        ts_ns = np.zeros(n, dtype=np.int64)
        known = iface < len(self.interfaces)
        if not known.all():
            self._issue(
                "capture.corrupt_record",
                base + int(pk[~known][0]),
                first_frame,
                f"{int((~known).sum())} packet(s) name an interface that was never "
                "described; their link type is unknown",
            )
        for i, itf in enumerate(self.interfaces):
            sel = iface == i
            if not sel.any():
                continue
            linktype[sel] = itf.linktype
            if itf.snaplen and spb[sel].any():
                s = sel & spb
                caplen[s] = np.minimum(caplen[s], itf.snaplen)
            ts_ns[sel] = _to_ns(ts_raw[sel], itf)
        ts_ns[spb] = 0  # a Simple Packet Block has no timestamp
        return RecordBatch(
            buf=buf,
            offset=data,
            caplen=caplen,
            wirelen=wirelen,
            ts_ns=ts_ns,
            linktype=linktype,
            frame=np.arange(first_frame, first_frame + n, dtype=np.int64),
        )


def _to_ns(ts: NDArray[np.uint64], itf: Interface) -> NDArray[np.int64]:
    if itf.res_pow2:
        # 2**-res second units: rare (some hardware); float keeps it simple and is exact to
        # well under a nanosecond for any plausible date.
        out = (ts.astype(np.float64) * (1e9 / float(2**itf.res))).astype(np.int64)
    elif itf.res <= 9:
        out = ts.astype(np.int64) * (10 ** (9 - itf.res))
    else:
        out = (ts // np.uint64(10 ** (itf.res - 9))).astype(np.int64)
    return out + itf.offset_s * 1_000_000_000
