"""Link layers other than Ethernet, as capture tools write them (tcpdump.org link-layer
header types): Linux cooked SLL/SLL2, BSD loopback, PPP, Cisco HDLC, NFLOG."""

from __future__ import annotations

import struct

# Linux packet types (include/uapi/linux/if_packet.h) and the 802.2 pseudo protocol.
PACKET_HOST, PACKET_OUTGOING = 0, 4
ETH_P_802_2 = 0x0004


def sll(payload: bytes, proto: int, *, pkttype: int = PACKET_HOST, addr: bytes = bytes(6)) -> bytes:
    """LINKTYPE_LINUX_SLL (113): packet type, ARPHRD_ETHER, address length, 8-byte address,
    protocol."""
    return struct.pack("!HHH8sH", pkttype, 1, len(addr), addr, proto) + payload


def sll2(
    payload: bytes,
    proto: int,
    *,
    pkttype: int = PACKET_HOST,
    ifindex: int = 2,
    addr: bytes = bytes(6),
) -> bytes:
    """LINKTYPE_LINUX_SLL2 (276): protocol, reserved, interface index, ARPHRD_ETHER, packet
    type, address length, 8-byte address."""
    return struct.pack("!HHIHBB8s", proto, 0, ifindex, 1, pkttype, len(addr), addr) + payload


def null(payload: bytes, family: int, *, order: str = "<") -> bytes:
    """LINKTYPE_NULL (0): the address family in the capturing host's byte order."""
    return struct.pack(order + "I", family) + payload


def ppp_link(payload: bytes, proto: int, *, address_control: bool = True) -> bytes:
    """LINKTYPE_PPP (9) / PPP_HDLC (50): RFC 1662 framing without flags and FCS."""
    return (b"\xff\x03" if address_control else b"") + struct.pack("!H", proto) + payload


def chdlc(payload: bytes, ethertype: int, *, broadcast: bool = False) -> bytes:
    """LINKTYPE_C_HDLC (104): address 0x0f/0x8f, control 0, EtherType."""
    return struct.pack("!BBH", 0x8F if broadcast else 0x0F, 0, ethertype) + payload


def nflog_tlv(typ: int, value: bytes, order: str = "<") -> bytes:
    body = struct.pack(order + "HH", 4 + len(value), typ) + value
    return body + bytes(-len(body) % 4)


def nflog(packet: bytes, family: int, *, prefix: bytes = b"netsleuth\0", order: str = "<") -> bytes:
    """LINKTYPE_NFLOG (239): family, version 0, resource id (big-endian), then TLVs in host
    order: NFULA_PREFIX (10) and NFULA_PAYLOAD (9)."""
    head = struct.pack("!BBH", family, 0, 1)
    return head + nflog_tlv(10, prefix, order) + nflog_tlv(9, packet, order)


def frame_relay(
    payload: bytes, *, dlci: int = 100, nlpid: int | None = None, ethertype: int | None = None
) -> bytes:
    """LINKTYPE_FRELAY (107): a 2-byte Q.922 address for `dlci`, then RFC 2427 (UI 0x03 and
    `nlpid`) or Cisco's encapsulation (`ethertype`)."""
    addr = struct.pack("!BB", (dlci >> 4) << 2, ((dlci & 0x0F) << 4) | 1)
    if nlpid is not None:
        return addr + bytes([0x03, nlpid]) + payload
    return addr + struct.pack("!H", ethertype or 0x0800) + payload


def ipnet(packet: bytes, family: int, *, ifindex: int = 2) -> bytes:
    """LINKTYPE_IPNET (226): version 1, family (2 or 26), hook 0, length, interface, group
    interface, zones."""
    return struct.pack("!BBHIIIII", 1, family, 0, len(packet), ifindex, 0, 0xFFFFFFFF, 0) + packet


def ipoib(packet: bytes, ethertype: int, *, qpn: int = 0x550) -> bytes:
    """LINKTYPE_IPOIB (242): 20 bytes the capture leaves zero here, the 20-byte destination
    hardware address (flags and queue pair number, then a link-local GID), the protocol
    type and 2 reserved bytes (tcpdump print-ipoib.c: 44 bytes, the type at 40)."""
    gid = bytes.fromhex("fe800000000000000010e000664ab451")
    return b"".join(
        [bytes(20), struct.pack("!I", qpn), gid, struct.pack("!HH", ethertype, 0), packet]
    )
