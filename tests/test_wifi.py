"""Wi-Fi captures: radiotap (127) and bare 802.11 (105). Frames are built field by field
(tests/realframes.py, which tests/test_tshark_diff.py also runs past tshark) and by scapy,
an independent writer of both headers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.dot11 import Dot11, Dot11FCS, Dot11QoS, RadioTap
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import LLC, SNAP
from scapy.packet import Packet, Raw, raw

from netsleuth import craft
from netsleuth.decode import L2
from tests import clirun
from tests import realframes as rf
from tests.capfiles import pcap_bytes
from tests.decodeutil import addr, anomalies, clean, dec, ports

V4 = rf.SNAP_IP + b"\x08\x00" + rf.inner_udp()
ETH = craft.ether(rf.inner_udp(), 0x0800)


def test_radiotap_data_frames_reach_ip_and_transport() -> None:
    linktype, frames = rf.wifi_captures()["radiotap"]
    t = dec(frames, linktype=linktype)
    assert [L2(int(k)) for k in t.l2] == [L2.IEEE80211] * len(frames)
    # plain, FCS + TSFT, QoS + HT Control, four addresses, four addresses + QoS + FCS,
    # padded header, A-MSDU (its first subframe), then protected and null: no packet
    assert [int(v) for v in t.outer.ver] == [4, 6, 4, 4, 4, 4, 4, 0, 0]
    for i in range(len(frames)):
        assert clean(t, i), anomalies(t, i)
    for i in (0, 1, 2, 3, 4, 5, 6):
        assert ports(t.outer, i) == (1, 2) and int(t.outer.proto[i]) == 17
        assert (int(t.llc_dsap[i]), int(t.snap_type[i])) in ((0xAA, 0x0800), (0xAA, 0x86DD))
    assert addr(t.outer, 0) == (rf.C, rf.D)


def test_datapad_on_headers_already_aligned_adds_nothing() -> None:
    """F_DATAPAD pads the 802.11 header to a multiple of 4: 24 and 32 bytes stay as they
    are (26 becomes 28: the "radiotap" capture's sixth frame)."""
    frames = [
        rf.radiotap(rf.wlan_data(V4), flags=0x20),  # 24 bytes
        rf.radiotap(rf.wlan_data(V4, flags=0x03, qos=b"\x00\x00"), flags=0x20),  # 32 bytes
    ]
    t = dec(frames, linktype=127)
    for i in range(2):
        assert clean(t, i), anomalies(t, i)
        assert ports(t.outer, i) == (1, 2)


def test_a_radiotap_record_without_a_frame_is_counted_quietly() -> None:
    """Bit 26, 0-length-PSDU (radiotap.org): the header alone, no frame behind it (mac80211
    writes these for a driver's RX_FLAG_NO_PSDU); not a truncated frame."""
    t = dec([_radiotap_raw(10, [2 | 1 << 26]) + b"\x00\x00"], linktype=127)
    assert int(t.l2[0]) == L2.IEEE80211
    assert clean(t), anomalies(t)


def test_the_fcs_is_not_payload() -> None:
    """With radiotap's F_FCS the last 4 bytes are the frame check sequence, not packet
    bytes: an IPv4 total length that counts them runs past the packet."""
    ip = bytearray(rf.inner_udp())
    good = rf.radiotap(rf.wlan_data(rf.SNAP_IP + b"\x08\x00" + bytes(ip)), flags=0x10)
    ip[2:4] = struct.pack(">H", len(ip) + 4)
    ip[10:12] = b"\x00\x00"
    ip[10:12] = struct.pack(">H", _ip_checksum(bytes(ip[:20])))
    long = rf.radiotap(rf.wlan_data(rf.SNAP_IP + b"\x08\x00" + bytes(ip)), flags=0x10)
    t = dec([good, long], linktype=127)
    assert clean(t, 0) and int(t.wend[0]) == len(good) - 4
    assert anomalies(t, 1)["outer"] == {"ipv4.bad_total_length"}


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@pytest.mark.parametrize(
    "packet",
    [
        RadioTap() / Dot11(type=2, subtype=0, FCfield=1) / LLC() / SNAP() / IP() / UDP(),
        RadioTap(present="TSFT+Flags", Flags="FCS")
        / Dot11FCS(type=2, subtype=8)
        / Dot11QoS()
        / LLC()
        / SNAP()
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=5353, dport=53),
        RadioTap(present="Flags+Rate+Channel+dBm_AntSignal", Flags=0)
        / Dot11(type=2, subtype=8, FCfield=3, addr4="02:00:00:00:00:09")
        / Dot11QoS(TID=5)
        / LLC()
        / SNAP()
        / IP(src="192.0.2.7", dst="198.51.100.9")
        / UDP(sport=4000, dport=4001)
        / Raw(b"payload"),
    ],
    ids=["data", "qos-fcs-tsft-v6", "four-address-qos"],
)
def test_scapy_frames_decode_as_scapy_reads_them(packet: Packet) -> None:
    wire = raw(packet)
    theirs = RadioTap(wire)
    ip = theirs[IP] if IP in theirs else theirs[IPv6]
    t = dec([wire], linktype=127)
    assert clean(t), anomalies(t)
    assert addr(t.outer) == (ip.src, ip.dst)
    assert ports(t.outer) == (theirs[UDP].sport, theirs[UDP].dport)
    assert int(t.outer.l4_len[0]) == theirs[UDP].len


def test_bare_80211_link_type() -> None:
    linktype, frames = rf.wifi_captures()["ieee80211"]
    t = dec(frames, linktype=linktype)
    assert [L2(int(k)) for k in t.l2] == [L2.IEEE80211] * 2
    assert [int(v) for v in t.outer.ver] == [4, 6]
    assert clean(t, 0) and clean(t, 1)


def _beacon() -> bytes:
    return b"".join(
        [b"\x80\x00\x00\x00", b"\xff" * 6, rf.AP, rf.AP, b"\x00\x00", b"\x00" * 12, b"\x00\x00"]
    )


@pytest.mark.parametrize(
    "frame",
    [
        rf.radiotap(_beacon()),  # management: no packet
        rf.radiotap(rf.wlan_data(V4, flags=0x05)),  # More Fragments: a piece of an MSDU
        rf.radiotap(rf.wlan_data(V4)[:22] + b"\x11\x00" + V4),  # fragment number 1
        rf.radiotap(rf.wlan_data(V4), flags=0x40),  # F_BADFCS: damaged in the air
        rf.radiotap(rf.wlan_data(V4, flags=0x03, qos=b"\x00\x01")),  # mesh control: unknown
        rf.radiotap(bytes([0xD4, 0x00]) + rf.AP + b"\x00\x00"),  # ACK, 10 bytes
    ],
    ids=["beacon", "more-fragments", "fragment-1", "bad-fcs", "mesh", "ack"],
)
def test_frames_without_a_decodable_packet_end_quietly(frame: bytes) -> None:
    """No IP layer and no anomaly: a first 802.11 fragment's IP header would announce more
    bytes than it holds, and a damaged frame's bytes are noise."""
    t = dec([frame], linktype=127)
    assert int(t.l2[0]) == L2.IEEE80211
    assert int(t.outer.ver[0]) == 0
    assert clean(t), anomalies(t)


def _radiotap_raw(length: int, present: list[int], version: int = 0) -> bytes:
    words = b"".join(struct.pack("<I", w) for w in present)
    return b"".join([bytes([version, 0]), struct.pack("<H", length), words])


@pytest.mark.parametrize(
    ("frame", "anomaly"),
    [
        (_radiotap_raw(4, [0]) + rf.wlan_data(V4), "l2.bad_pseudo_header"),  # shorter than itself
        (_radiotap_raw(9000, [0]) + rf.wlan_data(V4), "l2.bad_pseudo_header"),  # past the frame
        (_radiotap_raw(8, [0], version=1) + rf.wlan_data(V4), "l2.bad_pseudo_header"),
        # a present word announcing another that the length leaves no room for
        (_radiotap_raw(8, [1 << 31]) + rf.wlan_data(V4), "l2.bad_pseudo_header"),
        # Flags announced, the header ending before it
        (_radiotap_raw(8, [2]) + rf.wlan_data(V4), "l2.bad_pseudo_header"),
        # 70 chained present words: more than any real header
        (
            _radiotap_raw(8 + 4 * 69, [1 << 31] * 69 + [0]) + rf.wlan_data(V4),
            "l2.bad_pseudo_header",
        ),
        # F_FCS on a frame with no room for one
        (_radiotap_raw(9, [2]) + b"\x10", "l2.bad_pseudo_header"),
        (rf.radiotap(rf.wlan_data(V4)[:20]), "l2.truncated"),  # a data header cut short
        (rf.radiotap(b"\x08\x01\x00"), "l2.truncated"),
    ],
)
def test_bad_radiotap_and_80211_headers_are_named(frame: bytes, anomaly: str) -> None:
    t = dec([frame], linktype=127)
    assert anomalies(t)["outer"] == {anomaly}
    assert int(t.outer.ver[0]) == 0


def test_a_chain_of_present_words_within_the_bound_is_followed() -> None:
    """Two present words (the radiotap namespace, then an extension): the fields start
    after the last, at byte 12, so TSFT is aligned to byte 16 from the header's start;
    Flags (with F_FCS) follows it at byte 24."""
    words = _radiotap_raw(25, [(1 << 31) | 3, 0])
    header = words + b"\x00" * 4 + b"\xff" * 8 + b"\x10"  # a TSFT byte read as Flags: F_BADFCS
    frame = rf.wlan_data(V4)
    t = dec([header + frame + b"\xde\xad\xbe\xef"], linktype=127)
    assert clean(t), anomalies(t)
    assert int(t.outer.ver[0]) == 4
    assert int(t.wend[0]) == len(header) + len(frame)


def test_an_amsdu_subframe_longer_than_the_frame_is_bad_length() -> None:
    subframe = b"".join([rf.DST, rf.STA, struct.pack(">H", 4000), V4])
    t = dec([rf.radiotap(rf.wlan_data(subframe, qos=b"\x80\x00"))], linktype=127)
    assert anomalies(t)["outer"] == {"l2.bad_length"}


def test_scan_of_a_radiotap_capture(tmp_path: Path) -> None:
    """The command on a Wi-Fi capture: every frame counted under its link, the IP inside
    checked, nothing flagged on ordinary frames."""
    _, frames = rf.wifi_captures()["radiotap"]
    path = tmp_path / "wifi.pcap"
    path.write_bytes(pcap_bytes([(1, k, f) for k, f in enumerate(frames)], linktype=127))
    out = clirun.invoke("scan", "--format", "json", str(path)).json()
    assert out["inputs"][0]["linktypes"] == {"127": len(frames)}
    assert out["summary"]["link"] == {"ieee80211": len(frames)}
    assert out["summary"]["l3"] == {"ipv4": 6, "ipv6": 1, "other": 2}
    assert out["findings"] == []


# ----- Prism (119) and AVS (163) ------------------------------------------------------------
@pytest.mark.parametrize(("name", "linktype"), [("prism", 119), ("avs", 163)])
def test_prism_and_avs_headers_reach_ip(name: str, linktype: int) -> None:
    _, frames = rf.wifi_captures()[name]
    t = dec(frames, linktype=linktype)
    assert [L2(int(k)) for k in t.l2] == [L2.IEEE80211] * len(frames)
    for i in range(len(frames)):
        assert clean(t, i), anomalies(t, i)
        assert ports(t.outer, i) == (1, 2)


@pytest.mark.parametrize(
    ("frame", "linktype"),
    [
        (struct.pack("<II", 0x44, 4) + rf.wlan_data(V4), 119),  # shorter than itself
        (struct.pack("<II", 0x44, 4000) + rf.wlan_data(V4), 119),  # past the frame
        (struct.pack(">II", 0x80211001, 2) + rf.wlan_data(V4), 119),  # AVS inside, too short
        (struct.pack(">II", 0x80211001, 900) + rf.wlan_data(V4), 163),
    ],
)
def test_bad_prism_and_avs_lengths_are_named(frame: bytes, linktype: int) -> None:
    assert anomalies(dec([frame], linktype=linktype))["outer"] == {"l2.bad_pseudo_header"}


# ----- PPI (192) -------------------------------------------------------------------------
def test_ppi_frames_reach_ip_by_their_link_type() -> None:
    linktype, frames = rf.wifi_captures()["ppi"]
    t = dec(frames, linktype=linktype)
    assert [L2(int(k)) for k in t.l2] == [L2.IEEE80211] * 3 + [L2.ETHERNET] * 2
    assert [int(v) for v in t.outer.ver] == [4, 6, 4, 4, 4]
    for i in range(len(frames)):
        assert clean(t, i), anomalies(t, i)
        assert ports(t.outer, i) == (1, 2)


def test_ppi_fcs_flag_and_padded_fields() -> None:
    """802.11-Common's FCS flag, found behind an odd-sized field padded to 32 bits (pph_flags
    bit 0: Wireshark's dissect_ppi moves each field to a 4-byte boundary, PFH_DATA_LEN in
    Kismet's ppi header rounds each length up to 4). The same dissect_ppi counts only the
    unpadded lengths against pph_len, so with padding it reads on into the frame and tshark
    places the frame elsewhere: this case has no outside oracle, the even-sized one is in
    the tshark differential."""
    ip = bytearray(rf.inner_udp())
    ip[2:4] = struct.pack(">H", len(ip) + 4)  # counts the 4 FCS bytes as its own
    ip[10:12] = b"\x00\x00"
    ip[10:12] = struct.pack(">H", _ip_checksum(bytes(ip[:20])))
    frame = rf.wlan_data(rf.SNAP_IP + b"\x08\x00" + bytes(ip))
    fields = [rf.field(30000, b"\x01" * 5), rf.common(0x01)]
    t = dec([rf.ppi(frame, 105, fields, aligned=True)], linktype=192)
    assert anomalies(t)["outer"] == {"ipv4.bad_total_length"}


def test_scapy_ppi_frames_decode_as_scapy_reads_them() -> None:
    from scapy.contrib.ppi_cace import PPI_Dot11Common
    from scapy.layers.ppi import PPI, PPI_Hdr

    packet = (
        PPI(headers=[PPI_Hdr() / PPI_Dot11Common(Ch_Freq=5180)])
        / Dot11(type=2, subtype=8, FCfield=2)
        / Dot11QoS()
        / LLC()
        / SNAP()
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=68, dport=67)
    )
    theirs = PPI(raw(packet))
    t = dec([raw(packet)], linktype=192)
    assert clean(t), anomalies(t)
    assert addr(t.outer) == (theirs[IP].src, theirs[IP].dst)
    assert ports(t.outer) == (theirs[UDP].sport, theirs[UDP].dport)


@pytest.mark.parametrize(
    ("frame", "link"),
    [
        (rf.ppi(rf.wlan_data(V4), 105, [rf.common(0x05)]), L2.IEEE80211),  # FCS invalid
        (rf.ppi(ETH, 1, [rf.ext_8023(0x01, 0x1)]), L2.ETHERNET),  # FCS error
        (rf.ppi(ETH, 1, [rf.ext_8023(0x00, 0x4)]), L2.ETHERNET),  # symbol error
    ],
)
def test_ppi_frames_marked_damaged_end_quietly(frame: bytes, link: L2) -> None:
    t = dec([frame], linktype=192)
    assert (int(t.l2[0]), int(t.outer.ver[0])) == (link, 0)
    assert clean(t), anomalies(t)


def test_ppi_8023_extension_fcs_flag() -> None:
    """The 802.3 Extension's FCS flag applies to an Ethernet frame behind PPI (and the
    802.11-Common one does not: a field of another link type's is ignored)."""
    ip = bytearray(rf.inner_udp())
    ip[2:4] = struct.pack(">H", len(ip) + 4)
    ip[10:12] = b"\x00\x00"
    ip[10:12] = struct.pack(">H", _ip_checksum(bytes(ip[:20])))
    frame = craft.ether(bytes(ip), 0x0800)  # ppi() appends the CRC for either flag
    flagged = rf.ppi(frame, 1, [rf.ext_8023(0x01, 0)])
    other = rf.ppi(frame, 1, [rf.common(0x01)])
    t = dec([flagged, other], linktype=192)
    assert anomalies(t, 0)["outer"] == {"ipv4.bad_total_length"}
    assert clean(t, 1), anomalies(t, 1)


def _ppi_raw(length: int, dlt: int = 105, version: int = 0) -> bytes:
    return struct.pack("<BBHI", version, 0, length, dlt)


@pytest.mark.parametrize(
    "frame",
    [
        _ppi_raw(8, version=1) + rf.wlan_data(V4),
        _ppi_raw(4) + rf.wlan_data(V4),  # shorter than itself
        _ppi_raw(9000) + rf.wlan_data(V4),  # past the frame
        _ppi_raw(8, dlt=1 << 16) + rf.wlan_data(V4),  # no such link type
        _ppi_raw(12) + struct.pack("<HH", 2, 20) + rf.wlan_data(V4),  # field past the length
        _ppi_raw(8 + 4 * 70) + b"\x00\x00\x00\x00" * 70 + rf.wlan_data(V4),  # 70 fields
        _ppi_raw(8 + 24) + rf.common(0x01)[:24] + b"\x08\x01",  # FCS with no room for one
    ],
    ids=["version", "short", "long", "dlt", "field", "fields", "fcs"],
)
def test_bad_ppi_headers_are_named(frame: bytes) -> None:
    t = dec([frame], linktype=192)
    assert anomalies(t)["outer"] == {"l2.bad_pseudo_header"}


def test_a_link_type_behind_ppi_that_is_not_decoded_is_the_one_named(tmp_path: Path) -> None:
    path = tmp_path / "ppi.pcap"
    frame = rf.ppi(b"\x00" * 30, 147, [])
    path.write_bytes(pcap_bytes([(1, 0, frame)], linktype=192))
    out = clirun.invoke("scan", "--format", "json", str(path)).json()
    (f,) = out["findings"]
    assert f["id"] == "capture.unsupported_linktype"
    assert f["evidence"]["linktypes"] == {"147": {"name": "LINKTYPE_USER0 (147)", "packets": 1}}


def test_ethernet_length_checks_skip_frames_behind_ppi(tmp_path: Path) -> None:
    """l2.runt and l2.padding_nonzero judge a record's wire length as the Ethernet frame's:
    behind PPI it is not (here 8 + 52 bytes: the 60 would pass for a minimum frame whose
    last 10 bytes are padding)."""
    frame = craft.ether(rf.inner_udp(), 0x0800) + b"\x01" * 10
    assert len(frame) == 14 + 29 + 10
    path = tmp_path / "ppi-eth.pcap"
    record = rf.ppi(frame[:-1], 1, [])
    assert len(record) == 60
    path.write_bytes(pcap_bytes([(1, 0, record)], linktype=192))
    out = clirun.invoke("scan", "--format", "json", str(path)).json()
    assert out["findings"] == []
    assert out["summary"]["l3"] == {"ipv4": 1}


def _mixed_radiotap() -> list[bytes]:
    return [
        *rf.wifi_captures()["radiotap"][1],
        rf.radiotap(rf.wlan_data(V4)[:20]),
        rf.radiotap(rf.wlan_data(V4, flags=0x03, qos=b"\x00\x01")),
        _radiotap_raw(8, [2]) + rf.wlan_data(V4),
        rf.radiotap(rf.wlan_data(V4, flags=0x03)[:28]),
        rf.radiotap(rf.wlan_data(V4, flags=0x05)),
        rf.radiotap(rf.wlan_data(V4), flags=0x40),
        rf.radiotap(_beacon()),
    ]


def _mixed_ppi() -> list[bytes]:
    return [
        *rf.wifi_captures()["ppi"][1],
        rf.ppi(rf.wlan_data(V4), 105, [rf.common(0x05)]),
        rf.ppi(ETH, 1, [rf.ext_8023(0x01, 0x1)]),
        _ppi_raw(12) + struct.pack("<HH", 2, 20) + rf.wlan_data(V4),
        rf.ppi(rf.wlan_data(V4)[:20], 105, []),
        rf.ppi(b"\x00" * 30, 147, []),
        rf.ppi(rf.radiotap(rf.wlan_data(V4)), 127, []),  # radiotap behind PPI
        rf.ppi(rf.wlan_data(V4, flags=0x05), 105, [rf.common(0x01)]),
    ]


@pytest.mark.parametrize(
    ("linktype", "frames"),
    [
        (127, _mixed_radiotap()),
        (192, _mixed_ppi()),
        (105, [*rf.wifi_captures()["ieee80211"][1], rf.wlan_data(V4)[:20], _beacon()]),
        (
            119,
            [
                *rf.wifi_captures()["prism"][1],
                struct.pack("<II", 0x44, 4) + rf.wlan_data(V4),
                rf.prism(rf.wlan_data(V4)[:20], "<"),
                rf.prism(_beacon(), ">"),
            ],
        ),
    ],
    ids=["radiotap", "ppi", "ieee80211", "prism"],
)
def test_one_batch_of_every_kind_decodes_as_each_frame_alone(
    linktype: int, frames: list[bytes]
) -> None:
    """Every kind of frame above in one batch: each row as that frame decoded alone (the
    decoders filter index arrays step by step; a row kept in one array and dropped from
    another would shift every later row)."""
    together = dec(frames, linktype=linktype)
    for i, frame in enumerate(frames):
        alone = dec([frame], linktype=linktype)
        assert (int(together.l2[i]), int(together.outer.ver[i]), ports(together.outer, i)) == (
            int(alone.l2[0]),
            int(alone.outer.ver[0]),
            ports(alone.outer, 0),
        )
        assert int(together.outer.l4_len[i]) == int(alone.outer.l4_len[0])
        assert anomalies(together, i) == anomalies(alone, 0)


def test_steer_names_what_80211_frames_carry_when_it_is_not_ip(tmp_path: Path) -> None:
    """steer's non-IP classes: an 802.11 body that is LLC without a SNAP EtherType, and
    frames that carry no packet at all, each under its own name (not "0x0000")."""
    stp = b"\x42\x42\x03" + bytes(35)  # LLC SAP 0x42 and a BPDU's room
    frames = [
        rf.radiotap(rf.wlan_data(V4)),
        rf.radiotap(rf.wlan_data(stp)),
        rf.radiotap(_beacon()),
        rf.radiotap(rf.wlan_data(b"\x00" * 20, flags=0x41)),
    ]
    path = tmp_path / "wifi.pcap"
    path.write_bytes(pcap_bytes([(1, k, f) for k, f in enumerate(frames)], linktype=127))
    out = clirun.invoke("steer", "--format", "json", str(path)).json()
    classes = {c["class"]: c["packets"] for c in out["flows"]["non_ip"]}
    assert classes == {
        "802.2 LLC (802.11, no SNAP EtherType)": 1,
        "802.11 without a packet (management, control, null, protected, fragments)": 2,
    }
