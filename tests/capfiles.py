"""Capture files built byte by byte from the format specifications, independently of
netsleuth's own writer (draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng)."""

from __future__ import annotations

import struct
import zlib


def pcap_bytes(
    records: list[tuple[int, int, bytes]] | list[tuple[int, int, bytes, int]],
    *,
    order: str = "<",
    nano: bool = False,
    linktype: int = 1,
    snaplen: int = 65535,
) -> bytes:
    """records: (ts_sec, ts_frac, data[, wirelen])."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    parts = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for rec in records:
        sec, frac, data = rec[0], rec[1], rec[2]
        wire = rec[3] if len(rec) > 3 else len(data)
        parts += (struct.pack(order + "IIII", sec, frac, len(data), wire), data)
    return b"".join(parts)


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def shb(order: str = "<", os: str | None = None) -> bytes:
    """A section header; `os`: its shb_os option (code 3), as dumpcap writes it."""
    opts = b"" if os is None else option(order, 3, os.encode()) + option(order, 0, b"")
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts)


def idb(
    order: str,
    linktype: int,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    fcslen: int | None = None,
) -> bytes:
    """An interface description block; `tsresol`, `fcslen`: its if_tsresol (code 9) and
    if_fcslen (code 13) options."""
    opts = b""
    if tsresol is not None:
        opts += option(order, 9, bytes([tsresol]))
    if fcslen is not None:
        opts += option(order, 13, bytes([fcslen]))
    if opts:
        opts += option(order, 0, b"")
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def fcs_flags(order: str, octets: int) -> bytes:
    """An epb_flags option (code 2) saying an FCS length in octets (bits 5-8: draft section
    4.3.1), and opt_endofopt: for epb(opts=)."""
    return option(order, 2, struct.pack(order + "I", octets << 5)) + option(order, 0, b"")


def epb(
    order: str, iface: int, ts: int, data: bytes, *, wirelen: int | None = None, opts: bytes = b""
) -> bytes:
    """An enhanced packet block; `opts`: its options (option()), after the padded data."""
    body = struct.pack(
        order + "IIIII",
        iface,
        ts >> 32,
        ts & 0xFFFFFFFF,
        len(data),
        len(data) if wirelen is None else wirelen,
    )
    return block(order, 6, body + data + b"\0" * (-len(data) % 4) + opts)


def spb(order: str, data: bytes, *, wirelen: int | None = None) -> bytes:
    return block(
        order, 3, struct.pack(order + "I", len(data) if wirelen is None else wirelen) + data
    )


def isb(order: str, iface: int, *, ifdrop: int | None = None, osdrop: int | None = None) -> bytes:
    """An interface statistics block (draft section 4.6) with isb_ifdrop (5) and
    isb_osdrop (7) when given."""
    opts = b"".join(
        option(order, code, struct.pack(order + "Q", value))
        for code, value in ((5, ifdrop), (7, osdrop))
        if value is not None
    )
    return block(order, 5, struct.pack(order + "III", iface, 0, 0) + opts + option(order, 0, b""))


def with_fcs(frame: bytes) -> bytes:
    """The frame and its FCS as it crossed the wire: the IEEE 802.3 CRC-32 (zlib's), sent
    least significant byte first (tshark -o eth.check_fcs:TRUE calls each of these Good)."""
    return frame + zlib.crc32(frame).to_bytes(4, "little")
