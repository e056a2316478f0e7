"""IPv4 (RFC 791) and IPv6 (RFC 8200) with extension headers and fragmentation."""

from __future__ import annotations

import ipaddress
import struct

from netsleuth.craft.checksum import inet_checksum

DF, MF = 0x2, 0x1  # IPv4 flag bits as they sit above the 13-bit offset


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def ip6(text: str) -> bytes:
    return ipaddress.IPv6Address(text).packed


def ipv4(
    src: str,
    dst: str,
    payload: bytes,
    proto: int,
    *,
    ident: int = 1,
    flags: int = 0,
    frag_off: int = 0,
    ttl: int = 64,
    tos: int = 0,
    options: bytes = b"",
    total_length: int | None = None,
    checksum: int | None = None,
    ihl: int | None = None,
) -> bytes:
    """An IPv4 header + payload. `frag_off` is in bytes (a multiple of 8 on the wire)."""
    if len(options) % 4:
        raise ValueError("IPv4 options must be padded to a multiple of 4 bytes")
    hl = (20 + len(options)) // 4 if ihl is None else ihl
    tot = 20 + len(options) + len(payload) if total_length is None else total_length
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        (4 << 4) | hl,
        tos,
        tot,
        ident,
        (flags << 13) | (frag_off // 8),
        ttl,
        proto,
        0,
        ip4(src),
        ip4(dst),
    )
    hdr += options
    csum = inet_checksum(hdr) if checksum is None else checksum
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def fragment_ipv4(
    src: str,
    dst: str,
    payload: bytes,
    proto: int,
    *,
    sizes: list[int],
    ident: int = 1,
    flags: int = 0,
    ttl: int = 64,
) -> list[bytes]:
    """Split `payload` into fragments of the given payload sizes (RFC 791 section 3.2).

    The last fragment takes whatever is left (possibly nothing: a zero-length last
    fragment, as in incident 1). Every size but the last must be a multiple of 8.
    """
    out, off = [], 0
    for i, size in enumerate(sizes):
        last = i == len(sizes) - 1
        chunk = payload[off:] if last else payload[off : off + size]
        more = 0 if last else MF
        out.append(
            ipv4(src, dst, chunk, proto, ident=ident, flags=flags | more, frag_off=off, ttl=ttl)
        )
        off += len(chunk)
    return out


def ipv6(
    src: str,
    dst: str,
    payload: bytes,
    nh: int,
    *,
    hlim: int = 64,
    tc: int = 0,
    flow: int = 0,
    payload_length: int | None = None,
) -> bytes:
    plen = len(payload) if payload_length is None else payload_length
    first = (6 << 28) | (tc << 20) | (flow & 0xFFFFF)
    return struct.pack("!IHBB16s16s", first, plen, nh, hlim, ip6(src), ip6(dst)) + payload


def ipv6_ext(payload: bytes, nh: int, *, data: bytes = b"") -> bytes:
    """Hop-by-hop, routing or destination options header (RFC 8200 section 4).

    `data` follows the two fixed bytes; it is padded with a PadN option to an 8-octet
    multiple (for a routing header pass the type-specific data yourself).
    """
    body = data
    rem = (len(body) + 2) % 8
    if rem:
        padlen = 8 - rem
        body += b"\x00" if padlen == 1 else bytes([1, padlen - 2]) + bytes(padlen - 2)
    return bytes([nh, (len(body) + 2) // 8 - 1]) + body + payload


def ipv6_frag(payload: bytes, nh: int, *, offset: int, more: bool, ident: int) -> bytes:
    """Fragment header (RFC 8200 section 4.5); `offset` in bytes."""
    return struct.pack("!BBHI", nh, 0, (offset // 8) << 3 | int(more), ident) + payload


def pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    """The checksum pseudo-header of RFC 9293 section 3.1 / RFC 8200 section 8.1."""
    if ":" in src:
        return ip6(src) + ip6(dst) + struct.pack("!I3xB", length, proto)
    return ip4(src) + ip4(dst) + struct.pack("!BBH", 0, proto, length)
