"""Decoding what real networks carry (issue 12): PPTP acknowledgments, the link types users
capture with, and the encapsulations of access, carrier and data-centre networks. Frames are
built with netsleuth.craft (tests/realframes.py) and checked against scapy's bytes here and
against tshark's decoding in tests/test_tshark_diff.py."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.layers.ppp import GRE_PPTP
from scapy.packet import Raw, raw

from netsleuth import craft
from netsleuth.capture import RecordBatch, open_capture
from netsleuth.craft import encap, link
from netsleuth.decode import L2, Tunnel, decode
from netsleuth.decode.table import IP_FIELDS, Shim
from netsleuth.scan import scan
from tests import clirun
from tests import realframes as rf
from tests.decodeutil import anomalies, clean, dec


def test_pptp_acknowledgment_alone_is_valid() -> None:
    ours = rf.pptp_ack(4242, 7, pad=False)
    theirs = (
        Ether() / IP(src=rf.A, dst=rf.B) / GRE_PPTP(call_id=4242, acknum_present=1, ack_number=7)
    )
    assert ours[14:] == raw(theirs)[14:]
    t = dec([ours, rf.pptp_ack(9, 8, pad=True)])  # on Ethernet: padded to 60 bytes
    for i in (0, 1):
        assert clean(t, i), anomalies(t, i)
        assert (int(t.tunnels[i]), int(t.tunnel[i])) == (1, Tunnel.PPTP)
    assert [int(k) for k in t.gre_key] == [4242, 9]
    # Nothing after the GRE header is decoded: no PPP, no inner IP.
    assert [int(p) for p in t.ppp_proto] == [0, 0] and [int(n) for n in t.nip] == [1, 1]


def test_pptp_payload_length_bounds_the_ppp_frame() -> None:
    t = dec([rf.pptp_padded()])
    assert clean(t), anomalies(t)
    assert (int(t.inner.ver[0]), int(t.inner.dport[0]), int(t.inner.l4_len[0])) == (4, 2, 9)
    # The GRE payload ends where its length says, not at the frame's padding.
    assert int(t.end[0]) == 14 + 20 + 12 + 4 + 20 + 9


def test_compiled_prefix_pass_equals_numpy_decoders_on_these_frames() -> None:
    for name, (linktype, frames) in rf.captures().items():
        batch = RecordBatch.from_packets(frames, linktype=linktype)
        a, b = decode(batch, prefix=True), decode(batch, prefix=False)
        for col, v in vars(a).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, getattr(b, col)), (name, col)
        for layer in ("outer", "inner_raw"):
            for f in IP_FIELDS:
                x, y = getattr(getattr(a, layer), f), getattr(getattr(b, layer), f)
                assert np.array_equal(x, y), (name, layer, f)


def test_cooked_capture_of_incident_2_is_flagged_8023_llc(tmp_path: Path) -> None:
    """tcpdump -i any writes incident 2's BPDUs as SLL/SLL2 protocol 4 (ETH_P_802_2)."""
    from tests.capfiles import pcap_bytes

    for name in ("sll-llc", "sll2-llc"):
        linktype, frames = rf.captures()[name]
        path = tmp_path / f"{name}.pcap"
        path.write_bytes(pcap_bytes([(1, k, f) for k, f in enumerate(frames)], linktype=linktype))
        # No --fail-on: findings are exit 0.
        ran = clirun.run("scan", "--format", "json", str(path), code=0)
        found = {f["id"]: f for f in ran.json()["findings"]}
        assert "l2.ieee8023_llc" in found, sorted(found)
        assert found["l2.ieee8023_llc"]["count"] == 1


@pytest.mark.parametrize(
    ("name", "kinds", "versions"),
    [
        ("sll-llc", [L2.SLL, L2.SLL], [0, 4]),
        ("sll2-llc", [L2.SLL2, L2.SLL2], [0, 6]),
        ("null-af", [L2.NULL] * 4, [6, 6, 6, 4]),
        ("ppp", [L2.PPP] * 2, [4, 6]),
        ("ppp-hdlc", [L2.PPP, L2.CHDLC], [4, 6]),
        ("cisco-hdlc", [L2.CHDLC] * 2, [4, 6]),
        ("nflog", [L2.NFLOG] * 2, [4, 6]),
        ("frame-relay", [L2.FRELAY] * 3, [4, 6, 6]),
        ("ipnet", [L2.IPNET] * 2, [4, 6]),
        ("ipoib", [L2.IPOIB] * 2, [4, 6]),
    ],
)
def test_link_types_reach_ip_and_transport(name: str, kinds: list[L2], versions: list[int]) -> None:
    linktype, frames = rf.captures()[name]
    t = dec(frames, linktype=linktype)
    assert [L2(int(k)) for k in t.l2] == kinds
    assert [int(v) for v in t.outer.ver] == versions
    for i, v in enumerate(versions):
        assert clean(t, i), anomalies(t, i)
        if v:
            assert (int(t.outer.proto[i]), int(t.outer.dport[i])) == (17, 2)
        else:
            assert (int(t.llc_dsap[i]), int(t.stp_version[i])) == (0x42, 2)


def test_ppp_link_bytes_match_scapy() -> None:
    from scapy.layers.l2 import CookedLinux
    from scapy.layers.ppp import HDLC, PPP

    v4 = rf.inner_udp()
    assert link.ppp_link(v4, 0x21) == raw(HDLC() / PPP(proto=0x21) / Raw(v4))
    assert link.sll(v4, 0x0800) == raw(
        CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x0800) / Raw(v4)
    )


def test_unknown_link_type_is_named(tmp_path: Path) -> None:
    """A capture netsleuth cannot decode says which link type it is, with its count."""
    from tests.capfiles import pcap_bytes

    path = tmp_path / "wpan.pcap"
    path.write_bytes(pcap_bytes([(1, 0, bytes(40)), (2, 0, bytes(30))], linktype=195))
    (f,) = clirun.run("scan", "--format", "json", str(path), code=0).json()["findings"]
    assert (f["id"], f["count"], f["packets"], f["severity"]) == (
        "capture.unsupported_linktype",
        2,
        [1, 2],
        "info",
    )
    assert f["summary"].endswith("(LINKTYPE_IEEE802_15_4_WITHFCS (195) x2)")
    assert f["evidence"]["linktypes"] == {
        "195": {"name": "LINKTYPE_IEEE802_15_4_WITHFCS (195)", "packets": 2}
    }
    assert "LINKTYPE_NFLOG (239)" in f["evidence"]["decoded"]
    assert "LINKTYPE_IEEE802_11_RADIOTAP (127)" in f["evidence"]["decoded"]


def test_thousands_of_link_types_are_named_up_to_a_few_and_the_rest_counted() -> None:
    """A pcapng file may declare an interface per record, each of another link type."""
    from netsleuth.checks.linktype import UnsupportedLinkTypes
    from netsleuth.decode.linktypes import decoded_linktypes

    decoded = set(decoded_linktypes())
    kinds = [lt for lt in range(300, 1000) if lt not in decoded][:70]
    per = [lt for k, lt in enumerate(kinds) for _ in range(70 - k)]  # k-th seen 70 - k times
    batch = RecordBatch.from_packets([bytes(20)] * len(per))
    batch.linktype[:] = per
    check = UnsupportedLinkTypes()
    check.observe(decode(batch))
    (f,) = check.findings()
    assert f.count == len(per) == 70 * 71 // 2
    rest = sum(70 - k for k in range(8, 70))
    assert f.summary.endswith(f", and 62 other link types x{rest:,})")
    assert f.summary.count(" x") == 9  # eight named, one count of the rest
    assert sorted(map(int, f.evidence["linktypes"])) == sorted(kinds[:64])
    assert f.evidence["other_linktypes"] == {"kinds": 6, "count": sum(range(1, 7))}


def test_snoop_file_is_read(tmp_path: Path) -> None:
    """RFC 1761 layout, built here byte by byte: one Ethernet frame padded to 4 bytes."""
    frame = craft.ether(rf.inner_udp(), 0x0800)
    pad = bytes(-len(frame) % 4)
    rec = (
        struct.pack(">IIIIII", len(frame), len(frame), 24 + len(frame) + len(pad), 0, 7, 5)
        + frame
        + pad
    )
    path = tmp_path / "x.snoop"
    path.write_bytes(b"snoop\0\0\0" + struct.pack(">II", 2, 4) + rec * 3)
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert reader.kind == "snoop" and reader.issues == []
    assert [int(f) for f in batches[0].frame] == [1, 2, 3]
    assert batches[0].packet(2) == frame and int(batches[0].ts_ns[0]) == 7_000_005_000
    t = decode(batches[0])
    assert [int(d) for d in t.outer.dport] == [2, 2, 2]
    # Cut inside the third record: two records and a named truncation.
    path.write_bytes(b"snoop\0\0\0" + struct.pack(">II", 2, 4) + rec * 2 + rec[:30])
    reader = open_capture(str(path))
    assert sum(len(b) for b in reader.batches()) == 2
    assert [i.id for i in reader.issues] == ["capture.truncated_file"]


def test_pppoe_session_also_over_qinq_and_discovery_is_not_unknown() -> None:
    linktype, frames = rf.captures()["pppoe"]
    t = dec(frames, linktype=linktype)
    for i in range(3):
        assert clean(t, i), anomalies(t, i)
    assert [int(v) for v in t.outer.ver] == [4, 4, 0]
    assert [int(p) for p in t.ppp_proto] == [0x21, 0x21, 0]
    assert (int(t.vlan_n[1]), int(t.vlan1[1]), int(t.vlan2[1])) == (2, 10, 20)
    assert int(t.outer.dport[0]) == 2 and int(t.end[0]) == 14 + 6 + 2 + 29


def test_pppoe_bytes_match_scapy() -> None:
    from scapy.layers.ppp import PPP, PPPoE

    v4 = rf.inner_udp()
    assert encap.pppoe_session(v4, 0x21, session=7) == raw(
        PPPoE(sessionid=7) / PPP(proto=0x21) / Raw(v4)
    )


def test_ethernet_pseudowire_with_control_word() -> None:
    linktype, frames = rf.captures()["mpls-pw"]
    t = dec(frames, linktype=linktype)
    assert clean(t), anomalies(t)
    assert (int(t.mpls_n[0]), int(t.mpls_label[0]), int(t.outer.ver[0])) == (1, 100, 4)
    assert int(t.outer.off[0]) == 14 + 4 + 4 + 14


def test_gre_in_udp() -> None:
    linktype, frames = rf.captures()["gre-in-udp"]
    t = dec(frames, linktype=linktype)
    assert clean(t), anomalies(t)
    assert (int(t.tunnels[0]), int(t.tunnel[0]), int(t.gre_proto[0])) == (
        1,
        Tunnel.GRE_UDP,
        0x0800,
    )
    assert (int(t.inner.ver[0]), int(t.inner.dport[0])) == (4, 2)


def test_gre_protocol_types_are_bound_inside_gre_only() -> None:
    """0x88BE is ERSPAN inside GRE; as the EtherType of a plain frame it is nothing of ours
    (it decoded a plain frame as ERSPAN before keys were bound per parent)."""
    payload = craft.ether(rf.inner_udp(), 0x0800)
    frames = [craft.ether(bytes(8) + payload, et) for et in (0x88BE, 0x6558, 0x880B)]
    t = dec(frames)
    for i in range(3):
        assert anomalies(t, i)["outer"] == {"l2.unknown_ethertype"}
        assert (int(t.tunnels[i]), int(t.nip[i])) == (0, 0)


@pytest.mark.parametrize(
    ("name", "shim", "versions"),
    [
        ("vn-tag", Shim.VNTAG, [4]),
        ("e-tag", Shim.ETAG, [4]),
        ("pbb", Shim.PBB, [4]),
        ("nsh", Shim.NSH, [4, 4, 6]),
        ("pppoe", Shim.PPPOE, [4, 4, 0]),
        ("mpls-pw", Shim.MPLS, [4]),
        ("macsec", Shim.MACSEC, [4, 4]),
        ("cisco-metadata", Shim(0), [4]),
        ("arista", Shim(0), [4, 4]),
    ],
)
def test_tags_and_shims_reach_the_ip_behind_them(
    name: str, shim: Shim, versions: list[int]
) -> None:
    linktype, frames = rf.captures()[name]
    t = dec(frames, linktype=linktype)
    for i, v in enumerate(versions):
        assert clean(t, i), anomalies(t, i)
        # PPPoE discovery (the third pppoe frame) carries no IP: no shim in front of one.
        assert (int(t.outer.ver[i]), int(t.tunnels[i]), int(t.shim[i])) == (v, 0, shim if v else 0)
        if v:
            assert (int(t.outer.proto[i]), int(t.outer.dport[i])) == (17, 2)


@pytest.mark.parametrize(
    ("name", "kind", "inner", "vni"),
    [
        ("teredo", Tunnel.TEREDO, [6, 6, 6, 6], [-1, -1, -1, -1]),
        ("gtp-u", Tunnel.GTPU, [4, 6, 0], [0x1234, 0x5678, 0]),
        ("l2tp", Tunnel.L2TP, [4, 6], [-1, -1]),
        ("vxlan-gpe", Tunnel.VXLAN_GPE, [4, 6], [77, 78]),
        ("mpls-in-udp", Tunnel.MPLS_UDP, [4], [-1]),
        ("ethernet-in-ip", Tunnel.ETHERIP, [4, 6], [-1, -1]),
        ("mpls-in-ip", Tunnel.MPLS_IP, [4, 6], [-1, -1]),
        ("pim-register", Tunnel.PIM, [4], [-1]),
    ],
)
def test_udp_tunnels_reach_the_inner_packet(
    name: str, kind: Tunnel, inner: list[int], vni: list[int]
) -> None:
    linktype, frames = rf.captures()[name]
    t = dec(frames, linktype=linktype)
    for i, v in enumerate(inner):
        assert clean(t, i), anomalies(t, i)
        assert (int(t.tunnels[i]), int(t.tunnel[i]), int(t.vni[i])) == (1, kind, vni[i])
        if v:  # an echo request (GTP message type 1) has no user packet
            assert (int(t.nip[i]), int(t.inner.ver[i]), int(t.inner.dport[i])) == (2, v, 2)
        else:
            assert int(t.nip[i]) == 1


def test_l2tpv3_over_ip_is_named_and_not_entered() -> None:
    """IP protocol 115 (RFC 3931 section 4.1.1): a data session's cookie and sublayer are
    per-session configuration, so the walk ends after the session id, cleanly; a control
    message (session id 0) likewise."""
    linktype, frames = rf.captures()["l2tp-ip"]
    t = dec(frames, linktype=linktype)
    for i in range(len(frames)):
        assert clean(t, i), anomalies(t, i)
        assert (int(t.tunnels[i]), int(t.tunnel[i]), int(t.nip[i])) == (1, Tunnel.L2TP, 1)
    short = craft.ether(craft.ipv4(rf.A, rf.B, bytes(3), 115), 0x0800)  # 3 of the id's 4 bytes
    assert "tunnel.truncated" in anomalies(dec([short]), 0)["inner"]  # past the tunnel's entry


def test_encapsulation_bytes_match_scapy() -> None:
    from scapy.contrib.gtp import GTP_U_Header
    from scapy.contrib.nsh import NSH
    from scapy.layers.l2 import Dot1AH
    from scapy.layers.l2tp import L2TP

    v4, frame = rf.inner_udp(), craft.ether(rf.inner_udp(), 0x0800)
    assert encap.nsh(v4, 1) == raw(NSH(mdtype=2, length=2, nextproto=1, spi=42, si=255) / Raw(v4))
    assert encap.gtpu(v4, teid=0x1234) == raw(GTP_U_Header(teid=0x1234, gtp_type=255) / Raw(v4))
    ppp_frame = craft.ppp(v4, 0x21)
    assert encap.l2tp_v2(ppp_frame, length=False) == raw(
        L2TP(tunnel_id=1, session_id=2) / Raw(ppp_frame)
    )
    assert encap.pbb_itag(frame) == raw(Dot1AH(isid=0x10203) / Raw(frame))


def test_gtp_extension_headers_are_walked() -> None:
    """A G-PDU with a PDU session container (E flag; 3GPP TS 29.281 5.2.1): the inner
    packet starts after the 4 optional bytes and the 4-byte extension."""
    t = dec(rf.captures()["gtp-u"][1][1:2])
    outer_udp_payload = 14 + 20 + 8
    assert int(t.inner.off[0]) == outer_udp_payload + 8 + 4 + 4


def test_macsec_icv_is_not_payload_and_ciphertext_ends_decoding() -> None:
    linktype, frames = rf.captures()["macsec"]
    t = dec(frames, linktype=linktype)
    # The clear secure data ends 16 bytes (the ICV) before the frame does.
    ends = [int(t.end[i] - t.start[i]) - len(f) for i, f in enumerate(frames)]
    assert ends == [-16, -16]
    encrypted = bytearray(frames[0])
    encrypted[14] |= 0x0C  # E and C: confidentiality, the secure data is ciphertext
    t = dec([bytes(encrypted)])
    assert clean(t) and int(t.nip[0]) == 0 and int(t.shim[0]) == Shim.MACSEC


def test_pim_messages_other_than_register_are_not_tunnels() -> None:
    hello = craft.ipv4(rf.A, "224.0.0.13", b"\x20\x00\x00\x00" + bytes(8), 103)
    t = dec([craft.ether(hello, 0x0800)])
    assert clean(t) and (int(t.tunnels[0]), int(t.nip[0])) == (0, 1)


def test_a_null_registers_dummy_header_is_no_truncated_tunnel(corpus: Path) -> None:
    """A Null-Register (the N bit, RFC 7761 4.4.1 and 4.9.3) carries "only a dummy header
    ... and a data length of zero", whatever protocol it names: tcpdump's
    pim-packet-assortment.pcap holds ones of protocol 103 (its expected output reads them
    as whole Registers), and a dummy naming UDP, or an IPv6 one, is as legitimate; tshark
    shows the dummy IP header and nothing after it. The header is decoded (an inner IP
    layer from S to G) with no anomaly. Without the N bit, an inner packet that names a
    transport and gives it no byte is cut short, as anywhere, and so is a PIM header the
    inner IP header gives too few bytes to."""

    def register(inner: bytes, null: bool) -> bytes:
        return craft.ether(
            craft.ipv4(rf.A, rf.B, encap.pim_register(inner, null=null), 103), 0x0800
        )

    pim = craft.ipv4("10.0.0.1", "225.0.0.1", b"", 103)
    udp = craft.ipv4("10.0.0.1", "225.0.0.1", b"", 17)
    v6 = craft.ipv6("2001:db8::1", "ff0e::1", b"", 17)
    cut = craft.ipv4("10.0.0.1", "225.0.0.1", b"\x20\x00", 103)
    frames = [register(pim, True), register(udp, True), register(v6, True)]
    frames += [register(udp, False), register(pim, False), register(cut, True)]
    t = dec(frames)
    for k in range(3):
        assert clean(t, k) and int(t.tunnels[k]) == 1 and int(t.nip[k]) == 2
    assert int(t.inner.src4[1]) == 0x0A000001 and int(t.inner.dst4[1]) == 0xE1000001
    assert anomalies(t, 3)["inner"] == {"udp.truncated"}
    assert anomalies(t, 4)["inner"] == {"tunnel.truncated"}
    assert anomalies(t, 5)["inner"] == {"tunnel.truncated"}
    assert "PIMv2, Register, length 28" in (corpus / "pim-packet-assortment.out").read_text()
    result = scan([str(corpus / "pim-packet-assortment.pcap")])
    assert "tunnel.truncated" not in {f.id for f in result.findings}


def test_a_null_registers_dummy_header_of_version_0_is_no_bad_version() -> None:
    """A Null-Register's dummy header may carry version 0: tcpdump (print-pim.c, "case 0:
    Null header", printed "IP-Null-header S > G") and Wireshark ("IP Version: Dummy Header
    (0)"; tshark 4.0 shows no expert item) read it so, in IPv4 and IPv6 PIM alike. It ends
    the descent with no anomaly (it is no IP header: no inner layer); a version neither 0,
    4 nor 6 stays ip.bad_version, and so does version 0 in a Register that is no
    Null-Register (a data packet of no IP version)."""

    def register(inner: bytes, null: bool, *, six: bool = False) -> bytes:
        pim = encap.pim_register(inner, null=null)
        if six:
            return craft.ether(craft.ipv6("2001:db8::a", "2001:db8::b", pim, 103), 0x86DD)
        return craft.ether(craft.ipv4(rf.A, rf.B, pim, 103), 0x0800)

    v4 = bytes(12) + bytes([10, 0, 0, 1, 225, 0, 0, 1])
    v6 = bytes(8) + bytes.fromhex("20010db8" + "00" * 11 + "01" + "ff0e" + "00" * 13 + "01")
    bad = bytes([0x50]) + v4[1:]
    frames = [register(v4, True), register(v6, True, six=True)]
    frames += [register(bad, True), register(v4, False)]
    t = dec(frames)
    for k in range(2):
        assert clean(t, k), anomalies(t, k)
        assert (int(t.tunnels[k]), int(t.nip[k])) == (1, 1)
    assert anomalies(t, 2)["inner"] == {"ip.bad_version"}
    assert anomalies(t, 3)["inner"] == {"ip.bad_version"}


def test_a_header_cut_by_a_length_field_is_malformed_even_in_a_snapped_capture() -> None:
    """icmp.truncated where the IPv4 total length leaves 3 bytes for ICMP, though the
    capture was snapped (tcpdump's icmp-icmp_print-oobr-1.pcap); not where the snap
    length itself cut the header."""
    ip = bytearray(craft.ipv4(rf.A, rf.B, craft.icmp(8, 0, b"abcd"), 1))
    ip[2:4] = (23).to_bytes(2, "big")  # total length: header + 3 bytes
    ip[10:12] = b"\0\0"
    ip[10:12] = craft.inet_checksum(bytes(ip[:20])).to_bytes(2, "big")
    frame = craft.ether(bytes(ip), 0x0800)
    by_length = dec([frame], wirelen=[len(frame) + 100])
    assert anomalies(by_length)["outer"] == {"icmp.truncated"}
    by_snap = dec([frame[: 14 + 20 + 2]], wirelen=[len(frame)])
    assert anomalies(by_snap)["outer"] == set()
