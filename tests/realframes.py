"""Frames of what real networks carry (issue 12), built with netsleuth.craft: shared by
tests/test_decode_real.py (exact fields) and tests/test_tshark_diff.py (tshark's view)."""

from __future__ import annotations

import struct
import zlib

from netsleuth import craft
from netsleuth.craft import encap, link

A, B = "203.0.113.1", "198.51.100.1"
C, D = "10.0.0.1", "10.0.0.2"


def inner_udp(dport: int = 2) -> bytes:
    return craft.ipv4(C, D, craft.udp(C, D, 1, dport, b"x"), 17)


def pptp_ack(call_id: int, ack: int, pad: bool) -> bytes:
    """An acknowledgment alone: A bit, no S bit, payload length 0 (RFC 2637 section 4.1)."""
    gre = craft.gre_pptp(b"", call_id=call_id, ack=ack)
    frame = craft.ether(craft.ipv4(A, B, gre, 47), 0x0800)
    return craft.pad(frame) if pad else frame


def pptp_padded() -> bytes:
    """A PPTP data packet whose frame is padded past the payload length."""
    gre = craft.gre_pptp(craft.ppp(inner_udp(), 0x21), call_id=5, seq=1)
    return craft.pad(craft.ether(craft.ipv4(A, B, gre, 47), 0x0800), 120)


def captures() -> dict[str, tuple[int, list[bytes]]]:
    """name -> (link type, frames)."""
    return {
        "pptp": (1, [pptp_ack(4242, 7, False), pptp_ack(9, 8, True), pptp_padded()]),
        **link_captures(),
        **encap_captures(),
        **tag_captures(),
        **udp_tunnel_captures(),
        **wifi_captures(),
        **legacy_captures(),
        # Not 8472 and 4754: the harness names those by decode-as, which tshark applies
        # to either port (test_decode_fixes.py runs tshark on all of them without).
        "dns-to-tunnel-ports": (1, dns_replies(exclude=(8472, 4754))),
    }


def stp_llc() -> bytes:
    """Incident 2's frame body: LLC SAP 0x42 and an RSTP BPDU."""
    return craft.llc(craft.stp_bpdu(version=2), dsap=0x42, ssap=0x42)


def link_captures() -> dict[str, tuple[int, list[bytes]]]:
    v4, v6 = (
        inner_udp(),
        craft.ipv6("fd00::1", "fd00::2", craft.udp("fd00::1", "fd00::2", 1, 2, b"y"), 17),
    )
    return {
        "sll-llc": (113, [link.sll(stp_llc(), link.ETH_P_802_2), link.sll(v4, 0x0800)]),
        "sll2-llc": (276, [link.sll2(stp_llc(), link.ETH_P_802_2), link.sll2(v6, 0x86DD)]),
        "null-af": (0, [link.null(v6, af) for af in (24, 28, 30)] + [link.null(v4, 2)]),
        "ppp": (9, [link.ppp_link(v4, 0x21), link.ppp_link(v6, 0x57)]),
        "ppp-hdlc": (50, [link.ppp_link(v4, 0x21), link.chdlc(v6, 0x86DD)]),
        "cisco-hdlc": (104, [link.chdlc(v4, 0x0800), link.chdlc(v6, 0x86DD, broadcast=True)]),
        "nflog": (239, [link.nflog(v4, 2), link.nflog(v6, 10)]),
        "frame-relay": (
            107,
            [
                link.frame_relay(v4, nlpid=0xCC),
                link.frame_relay(v6, nlpid=0x8E),
                link.frame_relay(v6, ethertype=0x86DD),
            ],
        ),
        "ipnet": (226, [link.ipnet(v4, 2), link.ipnet(v6, 26)]),
        "ipoib": (242, [link.ipoib(v4, 0x0800), link.ipoib(v6, 0x86DD)]),
    }


def encap_captures() -> dict[str, tuple[int, list[bytes]]]:
    v4 = inner_udp()
    session = encap.pppoe_session(v4, 0x0021)
    qinq = craft.dot1q(craft.dot1q(session, 0x8864, vid=20), 0x8100, vid=10)
    # Real OUIs (Intel 00:1b:21, Cisco 00:00:0c): their first nibble is 0 like a control
    # word's, and tshark's pwethheuristic looks for known OUIs.
    macs = {"dst": "00:1b:21:0a:0b:0c", "src": "00:00:0c:01:02:03"}
    pw = craft.ether(
        craft.mpls(encap.pw_control_word(craft.ether(v4, 0x0800, **macs)), [100]), 0x8847
    )
    # Without the control word (optional, RFC 4448 section 4.6).
    pw_nocw = [
        craft.ether(craft.mpls(craft.ether(v4, 0x0800, **macs), [101]), 0x8847),
        craft.ether(craft.mpls(craft.ether(v6_udp(), 0x86DD, **macs), [102, 103]), 0x8847),
    ]
    gre_udp = craft.udp(A, B, 40000, 4754, craft.gre(v4, 0x0800))
    return {
        "pppoe": (
            1,
            [
                craft.pad(craft.ether(session, 0x8864)),
                craft.ether(qinq, 0x88A8),
                craft.pad(craft.ether(encap.pppoe_padi(), 0x8863)),
            ],
        ),
        "mpls-pw": (1, [pw]),
        "mpls-pw-nocw": (1, pw_nocw),
        "gre-in-udp": (1, [craft.ether(craft.ipv4(A, B, gre_udp, 17), 0x0800)]),
    }


def v6_udp() -> bytes:
    return craft.ipv6(
        "2001:db8::1", "2001:db8::2", craft.udp("2001:db8::1", "2001:db8::2", 1, 2, b"z"), 17
    )


def tag_captures() -> dict[str, tuple[int, list[bytes]]]:
    v4 = inner_udp()
    cust = craft.ether(v4, 0x0800, dst="02:00:00:00:00:0a", src="02:00:00:00:00:0b")
    return {
        "vn-tag": (1, [craft.ether(encap.vntag(v4, 0x0800), 0x8926)]),
        "e-tag": (1, [craft.ether(encap.etag(v4, 0x0800), 0x893F)]),
        "pbb": (1, [craft.ether(encap.pbb_itag(cust), 0x88E7)]),
        "macsec": (
            1,
            [
                craft.ether(encap.macsec(struct.pack("!H", 0x0800) + v4), 0x88E5),
                craft.ether(
                    encap.macsec(struct.pack("!H", 0x0800) + v4, sci=bytes(range(8))), 0x88E5
                ),
            ],
        ),
        "cisco-metadata": (1, [craft.ether(encap.cisco_metadata(v4, 0x0800), 0x8909)]),
        "arista": (
            1,
            [
                craft.ether(encap.arista_timestamp(v4, 0x0800), 0xD28B),
                craft.ether(encap.arista_timestamp(v4, 0x0800, version=0x0020), 0xD28B),
            ],
        ),
        "nsh": (
            1,
            [
                craft.ether(encap.nsh(v4, 1), 0x894F),
                craft.ether(encap.nsh(cust, 3), 0x894F),
                craft.ether(encap.nsh(v6_udp(), 2), 0x894F),
            ],
        ),
    }


def udp_tunnel_captures() -> dict[str, tuple[int, list[bytes]]]:
    v4, v6 = inner_udp(), v6_udp()

    def over_udp(sport: int, dport: int, payload: bytes) -> bytes:
        return craft.ether(craft.ipv4(A, B, craft.udp(A, B, sport, dport, payload), 17), 0x0800)

    origin = (40000, bytes([192, 0, 2, 9]))
    return {
        "teredo": (
            1,
            [
                over_udp(40001, 3544, encap.teredo(v6)),
                over_udp(40001, 3544, encap.teredo(v6, origin=origin)),
                over_udp(40001, 3544, encap.teredo(v6, auth=True, origin=origin)),
                # The server's answer: the lower port, 3544, is the source (udp.py).
                over_udp(3544, 40001, encap.teredo(v6, origin=origin)),
            ],
        ),
        "gtp-u": (
            1,
            [
                over_udp(2152, 2152, encap.gtpu(v4, teid=0x1234)),
                over_udp(2152, 2152, encap.gtpu(v6, teid=0x5678, pdu_session=9)),
                over_udp(2152, 2152, encap.gtpu(b"", teid=0, msg=1)),  # echo request
            ],
        ),
        "vxlan-gpe": (
            1,
            [
                over_udp(40002, 4790, encap.vxlan_gpe(v4, 1, vni=77)),
                over_udp(40002, 4790, encap.vxlan_gpe(craft.ether(v6, 0x86DD), 3, vni=78)),
            ],
        ),
        "mpls-in-udp": (1, [over_udp(40003, 6635, craft.mpls(v4, [200]))]),
        "mpls-in-ip": (
            1,
            [
                craft.ether(craft.ipv4(A, B, craft.mpls(v4, [300]), 137), 0x0800),
                craft.ether(
                    craft.ipv6("2001:db8::a", "2001:db8::b", craft.mpls(v6, [301, 302]), 137),
                    0x86DD,
                ),
            ],
        ),
        # L2TPv3 over IP (RFC 3931 section 4.1.1): a data session (id 0x1b1921cb, a 4-byte
        # cookie) and a control message (session id 0, then the control header).
        "l2tp-ip": (
            1,
            [
                craft.ether(
                    craft.ipv4(A, B, b"".join([bytes.fromhex("1b1921cb"), bytes(4), v4]), 115),
                    0x0800,
                ),
                craft.ether(
                    craft.ipv6(
                        "2001:db8::a",
                        "2001:db8::b",
                        b"".join([bytes(4), bytes.fromhex("c8030014"), bytes(16)]),
                        115,
                    ),
                    0x86DD,
                ),
            ],
        ),
        "ethernet-in-ip": (
            1,
            [
                craft.ether(craft.ipv4(A, B, encap.etherip(craft.ether(v4, 0x0800)), 97), 0x0800),
                craft.ether(
                    craft.ipv6("2001:db8::a", "2001:db8::b", craft.ether(v6, 0x86DD), 143), 0x86DD
                ),
            ],
        ),
        "pim-register": (
            1,
            [craft.ether(craft.ipv4(A, "192.0.2.99", encap.pim_register(v4), 103), 0x0800)],
        ),
        "l2tp": (
            1,
            [
                over_udp(1701, 1701, encap.l2tp_v2(craft.ppp(v4, 0x21))),
                over_udp(1701, 1701, encap.l2tp_v2(craft.ppp(v6, 0x57), length=False)),
            ],
        ),
    }


# UDP ports a tunnel is bound on in decode/ (Teredo, GTP-U, L2TP, GRE-in-UDP, MPLS-in-UDP,
# VXLAN and Linux's VXLAN, Geneve, VXLAN-GPE): a client may get any of them as its port.
TUNNEL_PORTS = (3544, 2152, 1701, 4754, 6635, 4789, 8472, 6081, 4790)


def dns_reply() -> bytes:
    """A DNS answer (RFC 1035 section 4.1): id 0x1234, QR/RD/RA, example.com A 192.0.2.80."""
    name = b"\x07example\x03com\x00"
    return b"".join(
        [
            struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0),
            name + struct.pack("!HH", 1, 1),
            b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 80]),
        ]
    )


def dns_replies(exclude: tuple[int, ...] = ()) -> list[bytes]:
    """8.8.8.8:53 answering a client whose port is a tunnel's: DNS, not the tunnel."""
    dns = "8.8.8.8"
    return [
        craft.ether(craft.ipv4(dns, C, craft.udp(dns, C, 53, port, dns_reply()), 17), 0x0800)
        for port in TUNNEL_PORTS
        if port not in exclude
    ]


# IEEE 802.11 frames (IEEE 802.11-2020 section 9.3.2.1), field by field: frame control is
# the type and subtype byte, then the flags byte.
STA, AP, DST = bytes.fromhex("020000000001"), bytes.fromhex("020000000002"), b"\xff" * 6
SNAP_IP = b"\xaa\xaa\x03\x00\x00\x00"  # LLC SNAP, OUI 0 (RFC 1042), the EtherType next


def wlan_data(
    body: bytes, *, flags: int = 0x01, qos: bytes | None = None, htc: bool = False
) -> bytes:
    """A data frame (type 2): subtype 0, or 8 (QoS Data) with a QoS Control field."""
    subtype = 0x88 if qos is not None else 0x08
    four = STA if flags & 0x03 == 0x03 else b""
    return b"".join(
        [
            bytes([subtype, flags | (0x80 if htc else 0)]),
            b"\x30\x00",  # duration
            AP,
            STA,
            DST,
            b"\x10\x00",  # sequence control: fragment 0, sequence 1
            four,
            qos or b"",
            b"\x00\x00\x00\x00" if htc else b"",
            body,
        ]
    )


def radiotap(frame: bytes, *, flags: int | None = None, tsft: bool = False) -> bytes:
    """A radiotap header (radiotap.org): present bit 0 TSFT (8 bytes, 8-aligned), bit 1
    Flags; with F_FCS (0x10) the frame gets its CRC-32 (IEEE 802.3 polynomial) appended."""
    present = (1 if tsft else 0) | (2 if flags is not None else 0)
    fields = (b"\x00" * 8 if tsft else b"") + (bytes([flags]) if flags is not None else b"")
    header = b"".join([b"\x00\x00", struct.pack("<HI", 8 + len(fields), present), fields])
    fcs = struct.pack("<I", zlib.crc32(frame)) if flags is not None and flags & 0x10 else b""
    return header + frame + fcs


def wifi_captures() -> dict[str, tuple[int, list[bytes]]]:
    v4 = SNAP_IP + b"\x08\x00" + inner_udp()
    v6 = (
        SNAP_IP
        + b"\x86\xdd"
        + craft.ipv6("fd00::1", "fd00::2", craft.udp("fd00::1", "fd00::2", 1, 2, b"y"), 17)
    )
    qos, amsdu = b"\x00\x00", b"\x80\x00"
    subframe = b"".join([DST, STA, struct.pack(">H", len(v4)), v4])
    return {
        "radiotap": (
            127,
            [
                radiotap(wlan_data(v4)),
                radiotap(wlan_data(v6, qos=qos), flags=0x10, tsft=True),  # FCS at the end
                radiotap(wlan_data(v4, qos=qos, htc=True), flags=0x00),
                radiotap(wlan_data(v4, flags=0x03)),  # four addresses
                radiotap(wlan_data(v4, flags=0x03, qos=qos), flags=0x10),
                radiotap(wlan_data(b"\x00\x00" + v4, qos=qos), flags=0x20),  # 26 bytes padded to 28
                radiotap(wlan_data(subframe + b"\x00\x00" + subframe, qos=amsdu)),
                radiotap(wlan_data(b"\x00" * 20, flags=0x41)),  # protected
                radiotap(bytes([0x48, 0x01]) + wlan_data(b"")[2:]),  # null data
            ],
        ),
        "ieee80211": (105, [wlan_data(v4), wlan_data(v6, flags=0x02, qos=qos)]),
        "prism": (
            119,
            [prism(wlan_data(v4), "<"), prism(wlan_data(v6, qos=qos), ">"), avs(wlan_data(v4))],
        ),
        "avs": (163, [avs(wlan_data(v4)), avs(wlan_data(v6, qos=qos), version=2)]),
        "ppi": (
            192,
            [
                ppi(wlan_data(v4), 105, [common(0x01)]),  # FCS at the end
                ppi(wlan_data(v6, qos=qos), 105, [common(0x00)]),
                # an even-sized field first; the 32-bit alignment flag changes nothing
                ppi(wlan_data(v4), 105, [field(30000, b"\x01" * 8), common(0x01)], aligned=True),
                ppi(craft.ether(inner_udp(), 0x0800), 1, []),  # Ethernet behind PPI
                ppi(craft.ether(inner_udp(), 0x0800), 1, [ext_8023(0x01, 0)]),  # with its FCS
            ],
        ),
    }


def prism(frame: bytes, order: str) -> bytes:
    """A Prism header: message code 0x44, length 144, a 16-byte device name and ten DID
    items (DID, status, length, data: 12 bytes each), in the byte order `order`."""
    items = b"".join(struct.pack(order + "IHHI", 0x41 + k, 0, 4, k) for k in range(10))
    return struct.pack(order + "II", 0x44, 144) + b"wlan0".ljust(16, b"\0") + items + frame


def avs(frame: bytes, *, version: int = 1) -> bytes:
    """An AVS (wlancap) header: magic 0x8021100N, length 64 (version 1) or 72, big-endian,
    then the radio fields (zero here)."""
    length = 64 if version == 1 else 72
    return struct.pack(">II", 0x80211000 + version, length) + bytes(length - 8) + frame


def field(kind: int, data: bytes) -> bytes:
    """A PPI field: type, data length (both little-endian), data."""
    return struct.pack("<HH", kind, len(data)) + data


def common(flags: int) -> bytes:
    """PPI's 802.11-Common field (type 2): TSFT, flags (bit 0: FCS present), rate, channel
    frequency and flags, FHSS hop set and pattern, signal and noise."""
    return field(2, struct.pack("<QHHHHBBbb", 0, flags, 2, 2437, 0x00A0, 0, 0, -40, -90))


def ext_8023(flags: int, errors: int) -> bytes:
    """PPI's 802.3 Extension field (type 9): flags (bit 0: FCS present), errors."""
    return field(9, struct.pack("<II", flags, errors))


def ppi(frame: bytes, dlt: int, fields: list[bytes], *, aligned: bool = False) -> bytes:
    """A PPI header (version 0, flags, length, DLT) with `fields`; the frame gets its CRC-32
    when the 802.11-Common or 802.3 Extension field says FCS present."""
    if aligned:
        fields = [f + b"\x00" * (-len(f) % 4) for f in fields]
    body = b"".join(fields)
    header = struct.pack("<BBHI", 0, 1 if aligned else 0, 8 + len(body), dlt) + body
    has_fcs = any(
        (f[:2] == b"\x02\x00" and f[12] & 1) or (f[:2] == b"\x09\x00" and f[4] & 1) for f in fields
    )
    return header + frame + (struct.pack("<I", zlib.crc32(frame)) if has_fcs else b"")


def legacy_captures() -> dict[str, tuple[int, list[bytes]]]:
    """ARCnet as Linux captures it, IP over ATM (routed, bridged, Classical IP) and Apple's
    PKTAP, field by field."""
    v4, eth = inner_udp(), craft.ether(inner_udp(), 0x0800)
    v6 = craft.ipv6("fd00::1", "fd00::2", craft.udp("fd00::1", "fd00::2", 1, 2, b"y"), 17)
    snap, bridged = bytes.fromhex("aaaa03000000"), bytes.fromhex("aaaa030080c20007") + b"\0\0"

    def arcnet(kind: int, packet: bytes, *, short: bool = False) -> bytes:
        return bytes([0x50, 0xBE, 0, 0, kind]) + (b"" if short else b"\x00\x12\x34") + packet

    def pktap(packet: bytes, dlt: int, length: int = 108) -> bytes:
        return struct.pack("<III", length, 1, dlt) + bytes(length - 12) + packet

    return {
        "arcnet": (
            129,
            [arcnet(0xD4, v4), arcnet(0xF0, v4, short=True), arcnet(0xC4, v6)],
        ),
        "atm-rfc1483": (100, [snap + b"\x08\x00" + v4, bridged + eth]),
        # tshark's clip dissector reads IPv4 whatever follows; tcpdump's print-cip.c also
        # takes LLC/SNAP and IPv6 (tests/test_legacy_links.py holds those): IPv4 here.
        "atm-clip": (106, [v4]),
        "pktap": (258, [pktap(eth, 1), pktap(v4, 12), pktap(eth, 1, length=120)]),
    }
