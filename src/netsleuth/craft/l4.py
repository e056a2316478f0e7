"""TCP, UDP, ICMP and ICMPv6 with checksums over the pseudo-header."""

from __future__ import annotations

import struct

from netsleuth.craft.checksum import inet_checksum
from netsleuth.craft.l3 import pseudo_header

TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80}


def _flags(flags: str | int) -> int:
    if isinstance(flags, int):
        return flags
    return sum(TCP_FLAGS[c] for c in flags)


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    flags: str | int = "S",
    window: int = 65535,
    options: bytes = b"",
    urg: int = 0,
    doff: int | None = None,
    checksum: int | None = None,
) -> bytes:
    if len(options) % 4:
        raise ValueError("TCP options must be padded to a multiple of 4 bytes")
    off = (20 + len(options)) // 4 if doff is None else doff
    hdr = (
        struct.pack(
            "!HHIIHHHH", sport, dport, seq, ack, (off << 12) | _flags(flags), window, 0, urg
        )
        + options
    )
    seg = hdr + payload
    csum = (
        inet_checksum(pseudo_header(src, dst, 6, len(seg)) + seg) if checksum is None else checksum
    )
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def udp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    length: int | None = None,
    checksum: int | None = None,
) -> bytes:
    ulen = 8 + len(payload) if length is None else length
    dgram = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    if checksum is None:
        csum = inet_checksum(pseudo_header(src, dst, 17, len(dgram)) + dgram)
        # A computed 0 is sent as all ones; 0 means "no checksum" (RFC 768).
        checksum = csum or 0xFFFF
    return dgram[:6] + struct.pack("!H", checksum) + dgram[8:]


def icmp(
    icmp_type: int, code: int = 0, payload: bytes = b"", *, ident: int = 0, seq: int = 0
) -> bytes:
    """ICMP (RFC 792); ident/seq fill the second word as echo messages use it."""
    msg = struct.pack("!BBHHH", icmp_type, code, 0, ident, seq) + payload
    return msg[:2] + struct.pack("!H", inet_checksum(msg)) + msg[4:]


def icmpv6(
    src: str,
    dst: str,
    icmp_type: int,
    code: int = 0,
    payload: bytes = b"",
    *,
    ident: int = 0,
    seq: int = 0,
) -> bytes:
    msg = struct.pack("!BBHHH", icmp_type, code, 0, ident, seq) + payload
    csum = inet_checksum(pseudo_header(src, dst, 58, len(msg)) + msg)
    return msg[:2] + struct.pack("!H", csum) + msg[4:]
