"""Capture records -> the Ethernet frames a host owning their destination would receive,
and what the receiving namespace needs for them (pure: bytes in, bytes and sets out).

- Link types: Ethernet as it is; Linux cooked (SLL 113, SLL2 276), raw IP (101, 12, 14,
  228, 229) and BSD loopback (0, 108) get an Ethernet header with the protocol they carry
  (an SLL protocol below 0x0600, e.g. 0x0004 for 802.2, becomes an 802.3 length field).
- Unicast destination MACs become the receiver's; group addresses (I/G bit set, IEEE 802
  section 8.2) stay, so broadcast and the STP group address arrive as they did.
- Outer unicast IPv4/IPv6 destinations are collected for the receiver to own; VXLAN frames
  (UDP 4789 or 8472) also name their VNI, port and inner destinations; GRE, IPIP, 6in4 and
  Geneve name the tunnel device they would need.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
VXLAN_PORTS = (4789, 8472)  # IANA (RFC 7348 section 5) and the Linux default before it
GENEVE_PORT = 6081  # RFC 8926 section 3.3
RAW_LINKTYPES = (101, 12, 14, 228, 229)
SUPPORTED = (1, 113, 276, 0, 108, *RAW_LINKTYPES)
# The largest frame a veth can carry: IPv4/IPv6 total length (65535) + Ethernet and two
# VLAN tags. Records beyond it are not sent (nor kept in memory: read_capture cuts them).
MAX_FRAME = 65535 + 14 + 8
# BSD loopback address families for IPv6 (FreeBSD 28, OpenBSD 24, Darwin 30): pcap-common.c
AF_INET6_BSD = (24, 28, 30)


@dataclass(frozen=True, slots=True)
class VxlanNeed:
    vni: int
    port: int
    local: str  # the outer destination: the tunnel's local address


@dataclass
class Needs:
    """What the receiver must own or create for the prepared frames."""

    addresses: dict[str, None] = field(default_factory=dict)  # ordered set
    vxlan: dict[VxlanNeed, dict[str, None]] = field(default_factory=dict)  # -> inner dsts
    vxlan_mac: dict[VxlanNeed, bytes] = field(default_factory=dict)  # inner unicast dst MAC
    tunnels: dict[str, int] = field(default_factory=dict)  # kind -> frames (gre, ipip, ...)
    vlans: dict[int, int] = field(default_factory=dict)  # VID -> frames


@dataclass(frozen=True, slots=True)
class Prepared:
    frame: int  # capture frame number
    data: bytes | None  # None: not sendable (why in `note`)
    note: str = ""


def to_ethernet(linktype: int, data: bytes, mac_src: bytes = bytes(6)) -> bytes | None:
    """An Ethernet frame for one record, or None for a link type the lab cannot send."""
    if linktype == 1:
        return data if len(data) >= 14 else None
    if linktype == 113 and len(data) >= 16:
        return _eth(struct.unpack_from("!H", data, 14)[0], data[16:], mac_src)
    if linktype == 276 and len(data) >= 20:
        return _eth(struct.unpack_from("!H", data, 0)[0], data[20:], mac_src)
    if linktype in RAW_LINKTYPES and data:
        version = data[0] >> 4
        proto = {4: ETH_P_IP, 6: ETH_P_IPV6}.get(version)
        return _eth(proto, data, mac_src) if proto else None
    if linktype in (0, 108) and len(data) >= 4:
        fam = struct.unpack_from("!I" if linktype == 108 else "=I", data, 0)[0]
        if fam == 2:
            return _eth(ETH_P_IP, data[4:], mac_src)
        if fam in AF_INET6_BSD:
            return _eth(ETH_P_IPV6, data[4:], mac_src)
    return None


def _eth(proto: int, payload: bytes, src: bytes) -> bytes:
    if proto < 0x0600:  # 802.3: the type field is the length of what follows
        return b"".join((bytes(6), src, struct.pack("!H", len(payload)), payload))
    return b"".join((bytes(6), src, struct.pack("!H", proto), payload))


def rewrite_dst(frame: bytes, mac: bytes) -> bytes:
    """Unicast destination -> `mac`; group addresses (first octet's low bit) unchanged."""
    if frame[0] & 1:
        return frame
    return mac + frame[6:]


def _unicast(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (addr.is_multicast or addr.is_unspecified or addr.is_loopback) and (
        addr.version == 6 or addr != ipaddress.IPv4Address("255.255.255.255")
    )


def _l3(ethertype: int, data: bytes, off: int) -> tuple[int, str | None, int, int]:
    """(protocol, destination, l4 offset, fragment offset) of an IP header at `off`;
    protocol -1 when it is not IP or too short."""
    if ethertype == ETH_P_IP and len(data) >= off + 20:
        ihl = (data[off] & 0x0F) * 4
        frag = struct.unpack_from("!H", data, off + 6)[0] & 0x1FFF
        dst = str(ipaddress.IPv4Address(data[off + 16 : off + 20]))
        return data[off + 9], dst, off + ihl, frag
    if ethertype == ETH_P_IPV6 and len(data) >= off + 40:
        dst = str(ipaddress.IPv6Address(data[off + 24 : off + 40]))
        return data[off + 6], dst, off + 40, 0
    return -1, None, off, 0


def _vlan_walk(data: bytes, off: int) -> tuple[int, int, int | None]:
    """Past any VLAN tags: (ethertype, offset of what follows, outermost VID)."""
    etype = struct.unpack_from("!H", data, off - 2)[0]
    vid = None
    while etype in VLAN_TYPES and len(data) >= off + 4:
        if vid is None:
            vid = struct.unpack_from("!H", data, off)[0] & 0x0FFF
        etype = struct.unpack_from("!H", data, off + 2)[0]
        off += 4
    return etype, off, vid


def note_needs(frame: bytes, needs: Needs) -> None:
    """Record what the receiver needs for this frame (outer and, for VXLAN, inner)."""
    etype, off, vid = _vlan_walk(frame, 14)
    if vid is not None:
        needs.vlans[vid] = needs.vlans.get(vid, 0) + 1
    proto, dst, l4, frag = _l3(etype, frame, off)
    if dst is None or not _unicast(ipaddress.ip_address(dst)):
        return
    needs.addresses.setdefault(dst)
    if frag:
        return
    if proto == 17 and len(frame) >= l4 + 8 + 8 + 14:
        dport = struct.unpack_from("!H", frame, l4 + 2)[0]
        if dport in VXLAN_PORTS and frame[l4 + 8] & 0x08:  # I flag: VNI valid (RFC 7348)
            vni = int.from_bytes(frame[l4 + 12 : l4 + 15])
            need = VxlanNeed(vni, dport, dst)
            inner = frame[l4 + 16 :]
            inner_dsts = needs.vxlan.setdefault(need, {})
            if not inner[0] & 1:
                needs.vxlan_mac.setdefault(need, inner[:6])
            ietype, ioff, _ = _vlan_walk(inner, 14)
            _, idst, _, _ = _l3(ietype, inner, ioff)
            if idst is not None and _unicast(ipaddress.ip_address(idst)):
                inner_dsts.setdefault(idst)
        elif dport == GENEVE_PORT:
            needs.tunnels["geneve"] = needs.tunnels.get("geneve", 0) + 1
    kind = {47: "gre", 4: "ipip", 41: "sit"}.get(proto)
    if kind is not None:
        needs.tunnels[kind] = needs.tunnels.get(kind, 0) + 1


def prepare(frame_no: int, linktype: int, data: bytes, mac: bytes, needs: Needs) -> Prepared:
    if len(data) > MAX_FRAME:
        return Prepared(frame_no, None, f"longer than any frame a veth carries ({MAX_FRAME} bytes)")
    eth = to_ethernet(linktype, data)
    if eth is None:
        why = (
            f"link type {linktype} is not replayable (Ethernet, Linux cooked, raw IP and "
            "BSD loopback are)"
            if linktype not in SUPPORTED
            else "too short for its link type"
        )
        return Prepared(frame_no, None, why)
    note_needs(eth, needs)
    return Prepared(frame_no, rewrite_dst(eth, mac))


def rewrite_inner_dst(frame: bytes, mac: bytes) -> bytes:
    """VXLAN: the inner unicast destination MAC -> `mac` too (the outer UDP checksum, when
    not zero, is cleared: RFC 7348 section 5 allows zero, and Linux accepts it)."""
    etype, off, _ = _vlan_walk(frame, 14)
    proto, _, l4, frag = _l3(etype, frame, off)
    if proto != 17 or frag or len(frame) < l4 + 16 + 14:
        return frame
    dport = struct.unpack_from("!H", frame, l4 + 2)[0]
    if dport not in VXLAN_PORTS or frame[l4 + 16] & 1:
        return frame
    if etype == ETH_P_IPV6:
        return frame  # IPv6 UDP needs its checksum (RFC 8200 section 8.1): left as captured
    inner = l4 + 16
    return b"".join((frame[: l4 + 6], b"\x00\x00", frame[l4 + 8 : inner], mac, frame[inner + 6 :]))
