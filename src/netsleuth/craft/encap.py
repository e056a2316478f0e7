"""Encapsulations of access and carrier networks: PPPoE session (RFC 2516), the MPLS
pseudowire control word (RFC 4385)."""

from __future__ import annotations

import struct


def pppoe_session(ppp_payload: bytes, proto: int, *, session: int = 0x1234) -> bytes:
    """PPPoE session header (version/type 0x11, code 0) and the PPP protocol field."""
    body = struct.pack("!H", proto) + ppp_payload
    return struct.pack("!BBHH", 0x11, 0, session, len(body)) + body


def pppoe_padi(*, tags: bytes = b"\x01\x01\x00\x00") -> bytes:
    """A discovery PADI (code 0x09, session 0) with a Service-Name tag."""
    return struct.pack("!BBHH", 0x11, 0x09, 0, len(tags)) + tags


def pw_control_word(frame: bytes, *, seq: int = 0) -> bytes:
    """The preferred PW MPLS control word (RFC 4385 section 3): nibble 0, flags, length 0
    (the frame is long enough), sequence number."""
    return struct.pack("!HH", 0, seq) + frame
