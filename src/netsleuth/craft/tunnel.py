"""Tunnel headers: GRE v0 (RFC 2784/2890), GRE v1 + PPP (RFC 2637, RFC 1661), ERSPAN II and
III (draft-foschiano-erspan-03), VXLAN (RFC 7348), Geneve (RFC 8926)."""

from __future__ import annotations

import struct

from netsleuth.craft.checksum import inet_checksum


def gre(
    payload: bytes,
    proto: int,
    *,
    key: int | None = None,
    seq: int | None = None,
    checksum: bool = False,
    routing: bool = False,
    version: int = 0,
) -> bytes:
    flags = (
        (0x8000 if checksum else 0)
        | (0x4000 if routing else 0)
        | (0x2000 if key is not None else 0)
        | (0x1000 if seq is not None else 0)
        | version
    )
    opt = b""
    if checksum or routing:
        opt += b"\x00\x00\x00\x00"  # checksum + reserved1 (or offset), filled below
    if key is not None:
        opt += struct.pack("!I", key)
    if seq is not None:
        opt += struct.pack("!I", seq)
    hdr = struct.pack("!HH", flags, proto) + opt
    if checksum:
        csum = inet_checksum(hdr + payload)  # over the GRE header and payload (RFC 2784)
        hdr = hdr[:4] + struct.pack("!H", csum) + hdr[6:]
    return hdr + payload


def gre_pptp(
    payload: bytes, *, call_id: int, seq: int | None = None, ack: int | None = None
) -> bytes:
    """Enhanced GRE (RFC 2637 section 4.1): K always, protocol 0x880B, version 1."""
    flags = 0x2000 | (0x1000 if seq is not None else 0) | (0x0080 if ack is not None else 0) | 1
    hdr = struct.pack("!HHHH", flags, 0x880B, len(payload), call_id)
    if seq is not None:
        hdr += struct.pack("!I", seq)
    if ack is not None:
        hdr += struct.pack("!I", ack)
    return hdr + payload


def ppp(
    payload: bytes, proto: int, *, address_control: bool = True, compress_protocol: bool = False
) -> bytes:
    """PPP in HDLC-like framing without flags/FCS, as PPTP carries it (RFC 1662)."""
    head = b"\xff\x03" if address_control else b""
    if compress_protocol and proto < 0x100 and proto & 1:
        return head + bytes([proto]) + payload
    return head + struct.pack("!H", proto) + payload


def erspan2(frame: bytes, *, session: int, vlan: int = 0, index: int = 0) -> bytes:
    """ERSPAN type II header (8 bytes); carry it in GRE 0x88BE with a sequence number."""
    return struct.pack("!HHI", (1 << 12) | vlan, session & 0x3FF, index & 0xFFFFF) + frame


def erspan3(
    frame: bytes,
    *,
    session: int,
    vlan: int = 0,
    timestamp: int = 0,
    frame_type: int = 0,
    hw_id: int = 0,
    subheader: bytes | None = None,
) -> bytes:
    """ERSPAN type III header (12 bytes, + 8 with the O bit); GRE protocol 0x22EB."""
    o_bit = 1 if subheader is not None else 0
    word = (frame_type << 10) | (hw_id << 4) | o_bit
    hdr = struct.pack("!HHIHH", (2 << 12) | vlan, session & 0x3FF, timestamp, 0, word)
    if subheader is not None:
        if len(subheader) != 8:
            raise ValueError("ERSPAN III platform subheader is 8 bytes")
        hdr += subheader
    return hdr + frame


def vxlan(frame: bytes, *, vni: int, flags: int = 0x08) -> bytes:
    return struct.pack("!B3xI", flags, vni << 8) + frame


def geneve(
    payload: bytes, proto: int = 0x6558, *, vni: int, options: bytes = b"", version: int = 0
) -> bytes:
    if len(options) % 4:
        raise ValueError("Geneve options are 4-byte multiples")
    return (
        struct.pack("!BBHI", (version << 6) | (len(options) // 4), 0, proto, vni << 8)
        + options
        + payload
    )
