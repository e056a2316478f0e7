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


def vntag(payload: bytes, ethertype: int, *, dst_vif: int = 5, src_vif: int = 9) -> bytes:
    """After EtherType 0x8926: d, p, dvif_id (14 bits), l, r, version, svif_id (12 bits)."""
    tag = ((dst_vif & 0x3FFF) << 16) | (src_vif & 0x0FFF)
    return struct.pack("!IH", tag, ethertype) + payload


def etag(payload: bytes, ethertype: int, *, ecid: int = 0x123) -> bytes:
    """After EtherType 0x893F: E-PCP/E-DEI/ingress E-CID base, GRP/E-CID base, ingress and
    E-CID extensions (IEEE 802.1BR clause 7.6)."""
    return struct.pack("!HHBBH", 0, ecid & 0x0FFF, 0, 0, ethertype) + payload


def pbb_itag(customer_frame: bytes, *, isid: int = 0x10203) -> bytes:
    """After EtherType 0x88E7: the I-TAG TCI (priority, DEI, UCA, I-SID), then the
    customer's frame (IEEE 802.1ah)."""
    return struct.pack("!I", isid & 0xFFFFFF) + customer_frame


def nsh(payload: bytes, next_proto: int, *, spi: int = 42, si: int = 255) -> bytes:
    """RFC 8300 with MD type 2 and no metadata: 2 words (base + service path header)."""
    base = struct.pack("!BBBB", 0x0F, 0xC2, 0x02, next_proto)  # ver 0, TTL 63, len 2, MD 2
    return base + struct.pack("!I", (spi << 8) | si) + payload


def teredo(
    ipv6_packet: bytes, *, origin: tuple[int, bytes] | None = None, auth: bool = False
) -> bytes:
    """RFC 4380 5.1.1: optional authentication (no id, no value) and origin indicators."""
    head = b""
    if auth:
        head += struct.pack("!HBB", 0x0001, 0, 0) + bytes(8) + b"\x00"
    if origin is not None:
        port, addr = origin
        head += struct.pack("!HH4s", 0, port ^ 0xFFFF, bytes(b ^ 0xFF for b in addr))
    return head + ipv6_packet


def gtpu(packet: bytes, *, teid: int, pdu_session: int | None = None, msg: int = 0xFF) -> bytes:
    """GTP-U (TS 29.281): with `pdu_session`, the E flag and one PDU session container
    extension (type 0x85, TS 38.415) holding that QFI."""
    if pdu_session is None:
        return struct.pack("!BBHI", 0x30, msg, len(packet), teid) + packet
    ext = struct.pack("!BBBB", 1, 0x00, pdu_session & 0x3F, 0)  # length 1 word, next 0
    body = struct.pack("!HBB", 0, 0, 0x85) + ext + packet
    return struct.pack("!BBHI", 0x34, msg, len(body), teid) + body


def l2tp_v2(ppp_frame: bytes, *, tunnel: int = 1, session: int = 2, length: bool = True) -> bytes:
    """An L2TPv2 data message (RFC 2661 3.1): L bit per `length`, version 2."""
    if length:
        return struct.pack("!HHHH", 0x4002, 8 + len(ppp_frame), tunnel, session) + ppp_frame
    return struct.pack("!HHH", 0x0002, tunnel, session) + ppp_frame


def cisco_metadata(payload: bytes, ethertype: int, *, sgt: int = 7) -> bytes:
    """Cisco MetaData on Ethernet (after 0x8909): version 1, length 1, option SGT, type."""
    return struct.pack("!BBHHH", 1, 1, 0x0001, sgt, ethertype) + payload


def macsec(secure_data: bytes, *, sci: bytes | None = None, pn: int = 1) -> bytes:
    """An integrity-only MACsec frame body (after 0x88E5): TCI (SC per `sci`, E and C clear,
    AN 0), short length 0, PN, optional SCI, the clear secure data, a 16-byte ICV (zeros:
    nothing verifies it here)."""
    tci = 0x20 if sci is not None else 0
    return struct.pack("!BBI", tci, 0, pn) + (sci or b"") + secure_data + bytes(16)


def vxlan_gpe(payload: bytes, next_proto: int, *, vni: int) -> bytes:
    """VXLAN-GPE: flags I and P (0x0C), reserved, next protocol, VNI."""
    return struct.pack("!BHBI", 0x0C, 0, next_proto, vni << 8) + payload


def pim_register(data_packet: bytes, *, null: bool = False) -> bytes:
    """A PIM Register (RFC 7761 4.9.3): version 2, type 1, checksum over the 8-byte header
    only (section 4.9), B clear, N (a Null-Register) as asked, then the data packet."""
    from netsleuth.craft.checksum import inet_checksum

    flags = 0x4000_0000 if null else 0
    head = struct.pack("!BBHI", 0x21, 0, 0, flags)
    return struct.pack("!BBHI", 0x21, 0, inet_checksum(head), flags) + data_packet


def arista_timestamp(payload: bytes, ethertype: int, *, version: int = 0x0010) -> bytes:
    """After EtherType 0xD28B: subtype 1 (timestamp), version, a 64-bit (0x0010) or 48-bit
    (0x0020) TAI timestamp, the type."""
    stamp = struct.pack("!II", 1_559_162_199, 5) if version == 0x0010 else struct.pack("!HI", 7, 5)
    return struct.pack("!HH", 1, version) + stamp + struct.pack("!H", ethertype) + payload


def etherip(frame: bytes) -> bytes:
    """EtherIP (RFC 3378): version 3 in the top 4 bits of a 2-byte header, then the frame."""
    return struct.pack("!H", 0x3000) + frame
