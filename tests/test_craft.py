"""The builder writes the same bytes as scapy for every layer (scapy is the oracle)."""

from __future__ import annotations

from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import GRE, LLC, SNAP, STP, Dot1Q, Dot3, Ether
from scapy.layers.ppp import GRE_PPTP, HDLC, PPP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw, raw

from netsleuth import craft
from netsleuth.craft.l2 import ieee8023
from netsleuth.craft.l3 import DF, MF

S4, D4 = "10.0.0.1", "10.0.0.2"
S6, D6 = "2001:db8::1", "2001:db8::2"
DATA = b"payload!"


def test_ethernet_vlan_ipv4_tcp_with_options() -> None:
    opts = b"\x02\x04\x05\xb4\x01\x03\x03\x07"  # MSS 1460, NOP, window scale 7
    ours = craft.ether(
        craft.dot1q(
            craft.ipv4(
                S4,
                D4,
                craft.tcp(
                    S4, D4, 1000, 80, DATA, seq=1, ack=2, flags="PA", window=512, options=opts
                ),
                6,
                ident=9,
                flags=DF,
                ttl=3,
                tos=0x10,
            ),
            0x0800,
            vid=42,
            pcp=5,
        ),
        0x8100,
        dst="00:00:00:00:00:02",
        src="00:00:00:00:00:01",
    )
    theirs = raw(
        Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01")
        / Dot1Q(vlan=42, prio=5)
        / IP(src=S4, dst=D4, id=9, flags="DF", ttl=3, tos=0x10)
        / TCP(
            sport=1000,
            dport=80,
            seq=1,
            ack=2,
            flags="PA",
            window=512,
            options=[("MSS", 1460), ("NOP", None), ("WScale", 7)],
        )
        / DATA
    )
    assert ours == theirs


def test_ipv4_options_and_fragment_fields() -> None:
    ours = craft.ipv4(
        S4, D4, DATA, 17, ident=5, flags=MF, frag_off=1400, options=b"\x94\x04\x00\x00"
    )  # router alert
    theirs = raw(
        IP(src=S4, dst=D4, id=5, flags="MF", frag=175, proto=17, options=[b"\x94\x04\x00\x00"])
        / DATA
    )
    assert ours == theirs


def test_zero_payload_fragment_of_incident_1() -> None:
    ours = craft.ipv4("27.18.141.4", "106.75.240.15", b"", 6, ident=0x5866, frag_off=1400, ttl=52)
    theirs = raw(IP(src="27.18.141.4", dst="106.75.240.15", id=0x5866, frag=175, ttl=52, proto=6))
    assert ours == theirs
    assert len(ours) == 20 and ours[2:4] == b"\x00\x14" and ours[6:8] == b"\x00\xaf"


def test_fragment_ipv4_matches_scapy_offsets() -> None:
    payload = bytes(range(200))
    frags = craft.fragment_ipv4(S4, D4, payload, 17, sizes=[96, 96, 8], ident=3)
    for f, off, mf, size in zip(frags, (0, 96, 192), (1, 1, 0), (96, 96, 8), strict=True):
        theirs = raw(
            IP(src=S4, dst=D4, id=3, proto=17, frag=off // 8, flags="MF" if mf else 0)
            / payload[off : off + size]
        )
        assert f == theirs


def test_overrides_make_malformed_headers() -> None:
    bad = craft.ipv4(S4, D4, DATA, 6, total_length=999, checksum=0xBEEF, ihl=4)
    assert bad[0] == 0x44 and bad[2:4] == (999).to_bytes(2, "big") and bad[10:12] == b"\xbe\xef"


def test_udp_icmp() -> None:
    assert craft.ipv4(S4, D4, craft.udp(S4, D4, 53, 5353, DATA), 17) == raw(
        IP(src=S4, dst=D4, id=1) / UDP(sport=53, dport=5353) / DATA
    )
    assert craft.ipv4(S4, D4, craft.icmp(8, 0, DATA, ident=7, seq=1), 1) == raw(
        IP(src=S4, dst=D4, id=1) / ICMP(type=8, id=7, seq=1) / DATA
    )


def test_ipv6_ext_headers_fragment_udp_icmpv6() -> None:
    ours = craft.ipv6(
        S6,
        D6,
        craft.ipv6_ext(
            craft.ipv6_frag(craft.udp(S6, D6, 1, 2, DATA), 17, offset=0, more=True, ident=0x1234),
            44,
        ),
        0,
    )
    theirs = raw(
        IPv6(src=S6, dst=D6)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrFragment(id=0x1234, m=1)
        / UDP(sport=1, dport=2)
        / DATA
    )
    assert ours == theirs
    assert craft.ipv6(S6, D6, craft.icmpv6(S6, D6, 128, 0, DATA, ident=1, seq=2), 58) == raw(
        IPv6(src=S6, dst=D6) / ICMPv6EchoRequest(id=1, seq=2, data=DATA)
    )


def test_gre_variants() -> None:
    inner = craft.ipv4(S4, D4, DATA, 17)
    assert craft.gre(inner, 0x0800, key=7, seq=9, checksum=True) == raw(
        GRE(chksum_present=1, key_present=1, key=7, seqnum_present=1, sequence_number=9)
        / IP(src=S4, dst=D4, id=1, proto=17)
        / DATA
    )
    ip = IP(src=S4, dst=D4, id=1, proto=17) / DATA
    pptp = GRE_PPTP(call_id=5, seqnum_present=1, sequence_number=1, acknum_present=1, ack_number=2)
    # scapy's PPP layer is the protocol field alone (address/control omitted, RFC 1662 ACFC);
    # HDLC adds the ff 03 that PPTP peers usually send.
    assert craft.gre_pptp(
        craft.ppp(inner, 0x21, address_control=False), call_id=5, seq=1, ack=2
    ) == raw(pptp / PPP(proto=0x21) / ip)
    assert craft.gre_pptp(craft.ppp(inner, 0x21), call_id=5, seq=1, ack=2) == raw(
        pptp / HDLC(address=0xFF, control=3) / PPP(proto=0x21) / ip
    )


def test_erspan_vxlan_geneve_mpls() -> None:
    frame = raw(Ether() / IP(src=S4, dst=D4))
    assert craft.erspan2(frame, session=33, vlan=7, index=5) == raw(
        ERSPAN_II(session_id=33, vlan=7, index=5) / Raw(frame)
    )
    assert craft.erspan3(frame, session=44, timestamp=9, subheader=bytes(8)) == raw(
        ERSPAN_III(session_id=44, timestamp=9, o=1) / ERSPAN_PlatformSpecific() / Raw(frame)
    )
    assert craft.vxlan(frame, vni=5001) == raw(VXLAN(vni=5001, flags=0x08) / Raw(frame))
    assert craft.geneve(frame, vni=77) == raw(GENEVE(vni=77, proto=0x6558) / Raw(frame))
    assert craft.mpls(frame, [100, 200], ttl=9) == raw(
        MPLS(label=100, s=0, ttl=9) / MPLS(label=200, s=1, ttl=9) / Raw(frame)
    )


def test_8023_llc_stp_and_snap() -> None:
    bpdu = craft.stp_bpdu(version=0, bpdu_type=0, flags=0)
    ours = craft.pad(ieee8023(craft.llc(bpdu, dsap=0x42, ssap=0x42), src="00:25:9e:c0:ff:ee"))
    theirs = raw(
        Dot3(dst="01:80:c2:00:00:00", src="00:25:9e:c0:ff:ee")
        / LLC(dsap=0x42, ssap=0x42, ctrl=3)
        / STP(
            rootid=32768,
            rootmac="00:00:00:00:00:00",
            bridgeid=32768,
            bridgemac="00:00:00:00:00:00",
            portid=0x8001,
            age=0,
            maxage=20,
            hellotime=2,
            fwddelay=15,
        )
    )
    theirs += bytes(60 - len(theirs))
    assert ours == theirs
    assert craft.snap(DATA, 0x0800) == raw(
        LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800) / DATA
    )
