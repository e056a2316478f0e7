"""Writing captures: pcap (one link type) and pcapng (one interface per link type, with a
per-packet comment option), for the demo, the benchmark and evidence export."""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterable
from typing import BinaryIO

LINKTYPE_ETHERNET = 1


def write_pcap(
    fh: BinaryIO,
    packets: Iterable[tuple[int, bytes]],
    *,
    linktype: int = LINKTYPE_ETHERNET,
    snaplen: int = 262144,
    nanosecond: bool = False,
) -> int:
    """Write (timestamp_ns, frame) pairs as a little-endian pcap; return the count."""
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    fh.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    div = 1 if nanosecond else 1000
    n = 0
    rec = struct.Struct("<IIII")
    buf: list[bytes] = []
    for ts, data in packets:
        sec, frac = divmod(ts, 1_000_000_000)
        buf.append(rec.pack(sec, frac // div, len(data), len(data)))
        buf.append(data)
        n += 1
        if len(buf) >= 8192:
            fh.write(b"".join(buf))
            buf.clear()
    fh.write(b"".join(buf))
    return n


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """Little-endian pcapng: SHB, then an IDB the first time each (interface, link type) is
    seen. `interface` is where the packet was captured, as the caller names it (the input
    and its own interface id): packets seen at two points of a capture stay at two points
    of the evidence, so a scan of it keys their fragments apart as the scan of the original
    did (fragments.observed)."""

    def __init__(self, fh: BinaryIO, *, application: str = "netsleuth") -> None:
        self.fh = fh
        self.ifaces: dict[tuple[Hashable, int], int] = {}
        shb = (
            struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
            + _opt(4, application.encode())
            + _opt(0, b"")
        )
        fh.write(_block(0x0A0D0D0A, shb))

    def packet(
        self,
        ts_ns: int,
        data: bytes,
        *,
        linktype: int = LINKTYPE_ETHERNET,
        wirelen: int | None = None,
        comment: str | None = None,
        interface: Hashable = None,
        direction: int = 0,
    ) -> None:
        if not 0 <= direction <= 3:
            raise ValueError(f"direction {direction}: epb_flags holds 0 to 3 (pcapng 4.3.1)")
        where = (interface, linktype)
        if where not in self.ifaces:
            self.ifaces[where] = len(self.ifaces)
            # if_tsresol = 9: nanosecond timestamps (pcapng section 4.2).
            idb = struct.pack("<HHI", linktype, 0, 0) + _opt(9, b"\x09") + _opt(0, b"")
            self.fh.write(_block(1, idb))
        body = struct.pack(
            "<IIIII",
            self.ifaces[where],
            ts_ns >> 32,
            ts_ns & 0xFFFFFFFF,
            len(data),
            len(data) if wirelen is None else wirelen,
        )
        body += data + b"\0" * (-len(data) % 4)
        opts = b""
        if comment:
            opts += _opt(1, comment.encode())
        if direction:  # epb_flags, its low two bits the direction (pcapng section 4.3.1)
            opts += _opt(2, struct.pack("<I", direction))
        if opts:
            body += opts + _opt(0, b"")
        self.fh.write(_block(6, body))
