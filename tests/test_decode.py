"""Decoding through every supported layer. Packets are built with scapy, an independent
implementation, so the decoder is not checked against our own builder's idea of a packet."""

from __future__ import annotations

import pytest
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import (
    GRE,
    LLC,
    SNAP,
    STP,
    CookedLinux,
    CookedLinuxV2,
    Dot1AD,
    Dot1Q,
    Dot3,
    Ether,
    Loopback,
)
from scapy.layers.ppp import GRE_PPTP, PPP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw, raw

from netsleuth.decode import L2, Tunnel
from tests.decodeutil import addr, anomalies, clean, dec, one, ports

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
IN4 = IP(src="10.1.2.3", dst="10.9.8.7", id=77, ttl=33) / TCP(sport=1111, dport=2222, flags="SA")


def test_plain_ipv4_tcp_fills_outer_and_inner_alike() -> None:
    t = one(raw(E / IN4))
    assert clean(t)
    for layer in (t.outer, t.inner):
        assert addr(layer) == ("10.1.2.3", "10.9.8.7")
        assert ports(layer) == (1111, 2222)
        assert int(layer.tcp_flags[0]) & 0xFF == 0x12
        assert (int(layer.ttl[0]), int(layer.ident[0]), int(layer.proto[0])) == (33, 77, 6)
        assert int(layer.l4_off[0]) == 34
    assert (int(t.l2[0]), int(t.ethertype[0]), int(t.tunnels[0])) == (L2.ETHERNET, 0x0800, 0)


def test_qinq_ipv6_udp() -> None:
    pkt = (
        Ether(type=0x88A8)
        / Dot1AD(vlan=100)
        / Dot1Q(vlan=200)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=5353, dport=53)
    )
    t = one(raw(pkt))
    assert clean(t)
    assert (int(t.vlan_n[0]), int(t.vlan1[0]), int(t.vlan2[0])) == (2, 100, 200)
    assert addr(t.inner) == ("2001:db8::1", "2001:db8::2")
    assert ports(t.inner) == (5353, 53)


def test_ipv6_extension_chain_reaches_tcp() -> None:
    pkt = (
        E
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / TCP(sport=1, dport=2)
    )
    t = one(raw(pkt))
    assert clean(t)
    assert int(t.inner.proto[0]) == 6
    assert int(t.inner.hlen[0]) == 40 + 8 + 8 + 8
    assert ports(t.inner) == (1, 2)


def test_ipv6_fragments_first_has_ports_later_does_not() -> None:
    base = E / IPv6(src="2001:db8::1", dst="2001:db8::2")
    first = (
        base
        / IPv6ExtHdrFragment(id=0xABCD, m=1, offset=0)
        / UDP(sport=9, dport=10)
        / Raw(b"x" * 32)
    )
    later = base / IPv6ExtHdrFragment(id=0xABCD, m=0, offset=5, nh=17) / Raw(b"y" * 16)
    t = dec([raw(first), raw(later)])
    assert clean(t, 0) and clean(t, 1)
    assert [bool(x) for x in t.inner.is_frag] == [True, True]
    assert [int(x) for x in t.inner.frag_off] == [0, 40]
    assert [int(x) for x in t.inner.flags] == [1, 0]
    assert [int(x) for x in t.inner.ident] == [0xABCD, 0xABCD]
    assert ports(t.inner, 0) == (9, 10)
    assert ports(t.inner, 1) == (0, 0)
    assert int(t.inner.proto[1]) == 17


def test_ipv4_fragments() -> None:
    first = (
        E
        / IP(src="1.1.1.1", dst="2.2.2.2", id=5, flags="MF")
        / UDP(sport=7, dport=8)
        / Raw(b"a" * 24)
    )
    later = E / IP(src="1.1.1.1", dst="2.2.2.2", id=5, frag=4, proto=17) / Raw(b"b" * 8)
    t = dec([raw(first), raw(later)])
    assert clean(t, 0) and clean(t, 1)
    assert [int(x) for x in t.inner.frag_off] == [0, 32]
    assert [int(x) for x in t.inner.flags] == [1, 0]
    assert ports(t.inner, 0) == (7, 8)
    assert ports(t.inner, 1) == (0, 0)


def test_gre_v0_key_seq_checksum_ipv4() -> None:
    pkt = (
        E
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / GRE(chksum_present=1, key_present=1, key=0x1234, seqnum_present=1, sequence_number=9)
        / IN4
    )
    t = one(raw(pkt))
    assert clean(t)
    assert (int(t.tunnel[0]), int(t.tunnels[0]), int(t.gre_key[0])) == (Tunnel.GRE, 1, 0x1234)
    assert addr(t.outer) == ("192.0.2.1", "192.0.2.2") and int(t.outer.proto[0]) == 47
    assert addr(t.inner) == ("10.1.2.3", "10.9.8.7")
    assert ports(t.inner) == (1111, 2222)
    assert ports(t.outer) == (0, 0)


def test_gre_teb_inside_vlan_like_incident_1() -> None:
    pkt = (
        Ether()
        / Dot1Q(vlan=10)
        / IP(src="172.31.141.195", dst="172.20.188.77")
        / GRE(proto=0x6558, key_present=1, key=0x5C6DFC)
        / Ether()
        / IN4
    )
    t = one(raw(pkt))
    assert clean(t)
    assert int(t.vlan1[0]) == 10 and int(t.gre_proto[0]) == 0x6558
    assert addr(t.inner) == ("10.1.2.3", "10.9.8.7")
    assert int(t.inner.off[0]) == 14 + 4 + 20 + 8 + 14


def test_gre_v1_pptp_ppp() -> None:
    pkt = (
        E
        / IP(src="203.0.113.1", dst="198.51.100.1")
        / GRE_PPTP(call_id=4242, seqnum_present=1, sequence_number=3, acknum_present=1)
        / PPP(proto=0x0021)
        / IN4
    )
    t = one(raw(pkt))
    assert clean(t)
    assert (int(t.tunnel[0]), int(t.gre_key[0]), int(t.ppp_proto[0])) == (Tunnel.PPTP, 4242, 0x21)
    assert addr(t.inner) == ("10.1.2.3", "10.9.8.7") and ports(t.inner) == (1111, 2222)


def test_pptp_with_compressed_ppp_header() -> None:
    # Address/control omitted and a one-byte protocol (RFC 1661 6.5, RFC 1662 3.2 ACFC).
    # A data packet: S bit and payload length set (RFC 2637 4.1; length 0 is an ack alone).
    ppp_payload = b"\x21" + raw(IN4)
    body = raw(GRE_PPTP(call_id=1, seqnum_present=1, payload_len=len(ppp_payload))) + ppp_payload
    pkt = E / IP(src="203.0.113.1", dst="198.51.100.1", proto=47) / Raw(body)
    t = one(raw(pkt))
    assert clean(t)
    assert int(t.ppp_proto[0]) == 0x21 and ports(t.inner) == (1111, 2222)


@pytest.mark.parametrize(
    ("outer", "inner", "kind"),
    [
        (IP(src="1.0.0.1", dst="1.0.0.2"), IP(src="10.0.0.1", dst="10.0.0.2"), Tunnel.IPIP),
        (IP(src="1.0.0.1", dst="1.0.0.2"), IPv6(src="fd00::1", dst="fd00::2"), Tunnel.IP6),
        (
            IPv6(src="2001:db8::a", dst="2001:db8::b"),
            IP(src="10.0.0.1", dst="10.0.0.2"),
            Tunnel.IPIP,
        ),
        (
            IPv6(src="2001:db8::a", dst="2001:db8::b"),
            IPv6(src="fd00::1", dst="fd00::2"),
            Tunnel.IP6,
        ),
    ],
)
def test_ip_in_ip(outer: IP, inner: IP, kind: Tunnel) -> None:
    t = one(raw(E / outer / inner / UDP(sport=3, dport=4)))
    assert clean(t)
    assert int(t.tunnel[0]) == kind
    assert addr(t.outer)[0] == outer.src and addr(t.inner)[0] == inner.src
    assert ports(t.inner) == (3, 4)


@pytest.mark.parametrize("port", [4789, 8472])
def test_vxlan(port: int) -> None:
    pkt = (
        E
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=4000, dport=port)
        / VXLAN(vni=5001)
        / Ether()
        / IN4
    )
    t = one(raw(pkt))
    assert clean(t)
    assert (int(t.tunnel[0]), int(t.vni[0])) == (Tunnel.VXLAN, 5001)
    assert ports(t.outer) == (4000, port)
    assert ports(t.inner) == (1111, 2222)


def test_geneve_with_options_and_ipv4_payload() -> None:
    opts = b"\x01\x02\x03\x01" + b"\xaa" * 4  # one 8-byte option TLV (class, type, len=1)
    pkt = (
        E
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=49152, dport=6081)
        / GENEVE(vni=77, proto=0x0800, optionlen=2)
        / Raw(opts)
        / IN4
    )
    t = one(raw(pkt))
    assert clean(t)
    assert (int(t.tunnel[0]), int(t.vni[0])) == (Tunnel.GENEVE, 77)
    assert addr(t.inner) == ("10.1.2.3", "10.9.8.7")


def test_erspan_ii_and_iii() -> None:
    outer = E / IP(src="192.0.2.1", dst="192.0.2.2")
    ii = outer / GRE(proto=0x88BE, seqnum_present=1) / ERSPAN_II(session_id=33) / Ether() / IN4
    iii = (
        outer
        / GRE(proto=0x22EB, seqnum_present=1)
        / ERSPAN_III(session_id=44, o=1)
        / ERSPAN_PlatformSpecific()
        / Ether()
        / IN4
    )
    t = dec([raw(ii), raw(iii)])
    for i, session in ((0, 33), (1, 44)):
        assert clean(t, i)
        assert (int(t.tunnel[i]), int(t.vni[i])) == (Tunnel.ERSPAN, session)
        assert ports(t.inner, i) == (1111, 2222)


def test_mpls_stack() -> None:
    pkt = Ether(type=0x8847) / MPLS(label=100, s=0) / MPLS(label=200, s=1) / IN4
    t = one(raw(pkt))
    assert clean(t)
    assert (int(t.mpls_n[0]), int(t.mpls_label[0])) == (2, 100)
    assert ports(t.inner) == (1111, 2222)


def test_8023_llc_stp_bpdu_padded() -> None:
    pkt = (
        Dot3(dst="01:80:c2:00:00:00", src="00:25:9e:c0:ff:ee")
        / LLC(dsap=0x42, ssap=0x42, ctrl=3)
        / STP(version=2, bpdutype=2)
    )
    frame = raw(pkt)
    frame += bytes(max(0, 60 - len(frame)))
    t = one(frame)
    assert clean(t)
    assert int(t.l2[0]) == L2.IEEE8023
    assert (int(t.llc_dsap[0]), int(t.llc_ssap[0])) == (0x42, 0x42)
    assert (int(t.stp_version[0]), int(t.stp_type[0])) == (2, 2)
    assert int(t.outer.ver[0]) == 0


def test_snap_carries_ipv4() -> None:
    pkt = Dot3() / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800) / IN4
    t = one(raw(pkt))
    assert clean(t)
    assert int(t.snap_type[0]) == 0x0800 and ports(t.inner) == (1111, 2222)


@pytest.mark.parametrize(
    ("frame", "linktype", "kind"),
    [
        (raw(CookedLinux(proto=0x0800) / IN4), 113, L2.SLL),
        (raw(CookedLinuxV2(proto=0x0800) / IN4), 276, L2.SLL2),
        (raw(Loopback(type=2) / IN4), 0, L2.NULL),
        (b"\x00\x00\x00\x02" + raw(IN4), 108, L2.NULL),
        (raw(IN4), 101, L2.RAW),
        (raw(IN4), 12, L2.RAW),
    ],
)
def test_link_types(frame: bytes, linktype: int, kind: L2) -> None:
    t = one(frame, linktype=linktype)
    assert clean(t)
    assert int(t.l2[0]) == kind and ports(t.inner) == (1111, 2222)


def test_sll_protocol_4_is_llc_like_incident_2() -> None:
    bpdu = raw(LLC(dsap=0x42, ssap=0x42, ctrl=3) / STP())
    t = one(raw(CookedLinux(proto=0x0004)) + bpdu, linktype=113)
    assert clean(t)
    assert int(t.llc_dsap[0]) == 0x42 and int(t.ethertype[0]) == 4


def test_icmp_and_icmpv6() -> None:
    t = dec([raw(E / IP() / ICMP(type=8)), raw(E / IPv6() / ICMPv6EchoRequest())])
    assert [int(x) for x in t.inner.icmp_type] == [8, 128]


def vx(inner: bytes, vni: int) -> bytes:
    return bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=49153, dport=4789)
        / VXLAN(vni=vni)
        / Raw(inner)
    )


def test_tunnel_depth_limit() -> None:
    frame = raw(E / IN4)
    for vni in range(4):
        frame = vx(frame, vni)
    deep = one(frame, depth=3)
    assert anomalies(deep) == {"outer": set(), "inner": {"tunnel.too_deep"}}
    full = one(frame, depth=4)
    assert clean(full) and ports(full.inner) == (1111, 2222) and int(full.tunnels[0]) == 4


# ----- malformed input is data -----------------------------------------------------------


def test_bad_ihl() -> None:
    frame = bytearray(raw(E / IN4))
    frame[14] = 0x44
    t = one(bytes(frame))
    assert anomalies(t)["outer"] == {"ipv4.bad_header_length"}
    assert ports(t.inner) == (0, 0)


def test_total_length_beyond_frame() -> None:
    t = one(raw(E / IP(src="1.1.1.1", dst="2.2.2.2", len=400) / TCP()))
    assert anomalies(t)["outer"] == {"ipv4.bad_total_length"}
    assert addr(t.outer) == ("1.1.1.1", "2.2.2.2")  # fields before the problem are kept


def test_truncated_tcp_is_anomaly_unless_snapped() -> None:
    frame = raw(E / IN4)[:-8]
    whole = one(frame)
    assert anomalies(whole)["outer"] == {"ipv4.bad_total_length"}
    fixed = bytearray(frame)
    fixed[16:18] = (len(frame) - 14).to_bytes(2, "big")  # total length fits, TCP does not
    t = one(bytes(fixed))
    assert anomalies(t)["outer"] == {"tcp.truncated"}
    snapped = dec([frame], wirelen=[len(frame) + 8])
    assert clean(snapped) and bool(snapped.snapped[0])


def test_gre_bad_version_and_routing_inside_tunnel_layer() -> None:
    base = E / IP(src="1.1.1.1", dst="2.2.2.2", proto=47)
    bad = one(raw(base / Raw(b"\x00\x03\x08\x00") / IN4))
    assert anomalies(bad)["inner"] == {"gre.bad_version"}
    routing = one(raw(base / Raw(b"\x40\x00\x08\x00\x00\x00\x00\x00") / IN4))
    assert anomalies(routing)["inner"] == {"gre.routing"}


def test_payload_too_short_for_vxlan_is_not_vxlan() -> None:
    # A UDP port is a hint (decode/udp.py): 3 bytes to 4789 are not a VXLAN header cut
    # short, just not VXLAN; nothing is flagged and no tunnel entered.
    pkt = E / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=49152, dport=4789) / Raw(b"\x08\x00\x00")
    t = one(raw(pkt))
    assert anomalies(t) == {"outer": set(), "inner": set()}
    assert int(t.tunnels[0]) == 0 and int(t.outer.dport[0]) == 4789


def test_udp_length_beyond_payload() -> None:
    t = one(raw(E / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=2, len=200)))
    assert anomalies(t)["outer"] == {"udp.bad_length"}


def test_unknown_ethertype_and_link_type() -> None:
    lldp = one(raw(Ether(type=0x88CC) / Raw(b"\x02\x07" + bytes(20))))
    assert anomalies(lldp)["outer"] == {"l2.unknown_ethertype"}
    assert int(lldp.ethertype[0]) == 0x88CC
    odd = one(b"\x00" * 40, linktype=147)
    # Not an anomaly of the packet: checks/linktype.py names the link type.
    assert anomalies(odd)["outer"] == set() and int(odd.l2[0]) == L2.UNKNOWN


def test_ethernet_padding_is_not_payload() -> None:
    # IPv4/UDP with 4 bytes of data padded to 60: the 14 padding bytes are not payload.
    udp = UDP(sport=49152, dport=4789)
    frame = raw(E / IP(src="1.1.1.1", dst="2.2.2.2") / udp / Raw(b"\x08bcd"))
    frame += b"\xff" * (60 - len(frame))
    t = one(frame)
    # 4 bytes to 4789 are no VXLAN header; the padding did not complete one.
    assert anomalies(t) == {"outer": set(), "inner": set()} and int(t.tunnels[0]) == 0
    assert int(t.inner.tot_len[0]) == 32 and int(t.end[0]) == 46


def test_header_only_packet_claiming_tcp_is_truncated_tcp() -> None:
    frame = raw(E / IP(src="1.1.1.1", dst="2.2.2.2", proto=6))
    t = one(frame + bytes(60 - len(frame)))
    assert anomalies(t)["outer"] == {"tcp.truncated"}


def test_inner_layer_declares_every_ip_field() -> None:
    from netsleuth.decode.table import IP_FIELDS, InnerLayer, _Merged

    merged = {k for k, v in vars(InnerLayer).items() if isinstance(v, _Merged)}
    assert merged == set(IP_FIELDS)


def test_inner_is_outer_without_tunnels_and_merged_with_them() -> None:
    plain = dec([raw(E / IN4), raw(E / IN4)])
    assert plain.inner is plain.outer
    tunnelled = raw(E / IP(src="192.0.2.1", dst="192.0.2.2") / GRE() / IN4)
    mixed = dec([raw(E / IN4), tunnelled])
    assert [addr(mixed.inner, i)[0] for i in range(2)] == ["10.1.2.3", "10.1.2.3"]
    assert [addr(mixed.outer, i)[0] for i in range(2)] == ["10.1.2.3", "192.0.2.1"]
