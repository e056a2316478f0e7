"""The compiled prefix pass (decode/_prefix.c) against the NumPy decoders it shortcuts.

The pass promises to write exactly what ethernet.py, vlan.py, ipv4.py, ipv6.py, tcp.py and
udp.py would, and to leave the cursor where they would; so every test here decodes the same
batch with and without it and compares every column of the PacketTable, bit for bit. The
inputs are the real captures of tcpdump's corpus, the incident captures, the benchmark mix,
and frames mutated field by field at exactly the values where the pass must step aside.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netsleuth.capture import RecordBatch, open_capture
from netsleuth.craft import incidents
from netsleuth.craft.l2 import dot1q, ether, mpls
from netsleuth.craft.l3 import fragment_ipv4, ipv4, ipv6, ipv6_ext
from netsleuth.craft.l4 import icmp, tcp, udp
from netsleuth.craft.mix import mixed_capture
from netsleuth.craft.tunnel import gre, gre_pptp, ppp, vxlan
from netsleuth.decode import (
    DEFAULT_TUNNEL_DEPTH,
    REGISTRY,
    PacketTable,
    _prefix,
    decode,
    engine,
    prefix,
)
from netsleuth.decode.prefix import compiled_steps, decode_prefix
from netsleuth.decode.table import IP_FIELDS, NS, Anomaly, Tunnel, loop_column
from netsleuth.errors import InputError
from tests import realframes as rf


def differences(a: PacketTable, b: PacketTable) -> list[str]:
    bad = [
        name
        for name, v in vars(a).items()
        if isinstance(v, np.ndarray) and not np.array_equal(v, getattr(b, name))
    ]
    for layer in ("outer", "inner_raw"):
        for f in IP_FIELDS:
            if not np.array_equal(getattr(getattr(a, layer), f), getattr(getattr(b, layer), f)):
                bad.append(f"{layer}.{f}")
    return bad


def both_ways(batch: RecordBatch) -> list[str]:
    return differences(decode(batch, prefix=True), decode(batch, prefix=False))


def test_corpus_captures_decode_identically(corpus: Path) -> None:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    compared = 0
    for path in files:
        try:
            batches = list(open_capture(str(path)).batches())
        except InputError:  # unreadable files are test_corpus.py's business
            continue
        for batch in batches:
            assert both_ways(batch) == [], path.name
            compared += len(batch)
    assert compared > 10_000


def test_incidents_and_benchmark_mix_decode_identically() -> None:
    caps = [
        incidents.incident1_poison_fragment(),
        incidents.incident2_stp_llc(seconds=5),
        incidents.incident3_pptp(flows=50),
        incidents.incident3_gre_v0(flows=50),
        list(mixed_capture(20_000, seed=3)),
    ]
    for cap in caps:
        batch = RecordBatch.from_packets([f for _, f in cap])
        assert both_ways(batch) == []


S, D = "10.1.2.3", "192.0.2.9"
S6, D6 = "2001:db8::1", "2001:db8::2"


def _edge_frames() -> list[bytes]:
    """Frames at each boundary where the pass must stop or go on."""
    seg = tcp(S, D, 1234, 80, b"x" * 30, flags="PA")
    v4 = ipv4(S, D, seg, 6, ident=7, flags=0x2)
    frames = [ether(v4, 0x0800), ether(dot1q(v4, 0x0800, vid=5), 0x8100)]
    frames.append(ether(dot1q(dot1q(v4, 0x0800, vid=6), 0x8100, vid=7), 0x88A8))
    three = dot1q(dot1q(dot1q(v4, 0x0800, vid=1), 0x8100, vid=2), 0x8100, vid=3)
    frames.append(ether(three, 0x8100))  # a third tag: vlan.py's
    frames.append(ether(dot1q(b"\x42\x42\x03" + bytes(40), 43, vid=9), 0x8100))  # length field
    frames.append(ether(ipv4(S, D, udp(S, D, 53, 5353, b"q" * 12), 17), 0x0800))
    # VXLAN (I flag) holding no Ethernet II frame (from port 53 it would be DNS: udp.py)
    vx = b"\x08" + bytes(29)
    frames.append(ether(ipv4(S, D, udp(S, D, 40000, 4789, vx), 17), 0x0800))
    frames.append(ether(ipv4(S, D, icmp(8, 0, b"ping"), 1), 0x0800))
    frames.append(ether(ipv4(S, D, b"\x00" * 24, 132), 0x0800))  # SCTP: unbound protocol
    frames.append(ether(ipv4(S, D, seg, 6, options=b"\x01\x01\x01\x00"), 0x0800))
    frames.append(ether(ipv6(S6, D6, tcp(S6, D6, 1, 2, b"six"), 6), 0x86DD))
    frames.append(ether(ipv6(S6, D6, udp(S6, D6, 3, 4, b"six"), 17), 0x86DD))
    frames.append(ether(ipv6(S6, D6, ipv6_ext(tcp(S6, D6, 1, 2, b""), 6), 0), 0x86DD))
    frames.append(ether(b"\x00" * 46, 0x88B5))  # an EtherType nothing decodes
    return frames


def _mutations(frames: list[bytes], rng: random.Random, reach: int = 80) -> list[bytes]:
    out = []
    for f in frames:
        for at in range(12, min(len(f), reach)):
            for value in (0, 1, 0x0F, 0x40, 0x45, 0x46, 0x4F, 0x60, 0x80, 0xFF):
                g = bytearray(f)
                g[at] = value
                out.append(bytes(g))
        for cut in range(0, min(len(f), reach + 10), 3):
            out.append(f[:cut])
        for _ in range(40):
            g = bytearray(f)
            for _ in range(rng.randrange(1, 4)):
                g[rng.randrange(len(g))] = rng.randrange(256)
            out.append(bytes(g[: rng.randrange(len(g) + 1)]))
    return out


def _tunnel_frames() -> list[bytes]:
    """Each tunnel the pass enters, with the header options that change its length, and
    IPv4 fragments outside and inside a tunnel."""
    seg = tcp(S, D, 1234, 80, b"x" * 30, flags="PA")
    v4 = ipv4(S, D, seg, 6, ident=7, flags=0x2)
    u6 = ipv6(S6, D6, udp(S6, D6, 3, 4, b"six"), 17)
    inner_eth = ether(dot1q(ipv4(S, D, udp(S, D, 9, 53, b"q" * 9), 17), 0x0800, vid=3), 0x8100)
    frames = [
        gre(v4, 0x0800, key=5),
        gre(u6, 0x86DD, key=6, seq=9, checksum=True),
        gre(inner_eth, 0x6558),  # transparent Ethernet bridging
        gre(v4, 0x0800, seq=1),
        gre_pptp(ppp(v4, 0x0021), call_id=42, seq=3, ack=2),
        gre_pptp(ppp(v4, 0x0021, address_control=False, compress_protocol=True), call_id=7),
        gre_pptp(ppp(u6, 0x0057), call_id=8, seq=1),
    ]
    outer = [ether(ipv4("198.51.100.1", "198.51.100.2", g, 47), 0x0800) for g in frames]
    outer.append(ether(ipv4("198.51.100.1", "198.51.100.2", v4, 4), 0x0800))  # IPIP
    outer.append(ether(ipv6(S6, D6, v4, 4), 0x86DD))  # 4in6
    outer.append(ether(ipv4("198.51.100.1", "198.51.100.2", u6, 41), 0x0800))  # 6in4
    vx = vxlan(ether(v4, 0x0800), vni=77)
    outer.append(ether(ipv4(S, D, udp(S, D, 49152, 4789, vx), 17), 0x0800))
    outer.append(ether(ipv4(S, D, udp(S, D, 49152, 8472, vx), 17), 0x0800))
    # Four tunnels deep: the fourth is tunnel.too_deep (engine DEFAULT_TUNNEL_DEPTH = 3).
    deep = v4
    for _ in range(4):
        deep = ipv4("198.51.100.1", "198.51.100.2", gre(deep, 0x0800), 47)
    outer.append(ether(deep, 0x0800))
    dgram = udp(S, D, 1000, 2000, bytes(range(200)) * 3)
    frags = fragment_ipv4(S, D, dgram, 17, sizes=[16, 256, 336], ident=99)
    outer.extend(ether(f, 0x0800) for f in frags)
    tfr = fragment_ipv4(S, D, seg, 6, sizes=[8, len(seg) - 8], ident=5)  # TCP cut at 8 bytes
    outer.extend(ether(f, 0x0800) for f in tfr)
    outer.append(ether(ipv4("198.51.100.1", "198.51.100.2", gre(frags[0], 0x0800), 47), 0x0800))
    # VXLAN inside GRE: the third IP header replaces the second's transport fields.
    mid = ipv4(S, D, udp(S, D, 49152, 4789, vxlan(ether(u6, 0x86DD), vni=5)), 17)
    outer.append(ether(ipv4("198.51.100.1", "198.51.100.2", gre(mid, 0x0800), 47), 0x0800))
    return outer


def _deep_chain(units: int) -> bytes:
    """Ethernet, 8 VLAN tags, IPv4, GRE, Ethernet (13 headers the pass decodes), then
    `units` pairs of MPLS (with a pseudowire control word) and Ethernet, ending in ARP
    (bound, so mpls.py takes the innermost pseudowire for Ethernet): with ARP's round,
    12 + 2 * units + 1 rounds. (GRE's 0x6558 chains no longer exist: 0x6558 is bound
    inside GRE only.)"""
    body = ether(b"\x00" * 28, 0x0806)
    for _ in range(units):
        body = ether(mpls(b"\x00\x00\x00\x00" + body, [16]), 0x8847)
    pkt: bytes = ipv4("198.51.100.1", "198.51.100.2", gre(body, 0x6558), 47)
    typ = 0x0800
    for vid in range(8):
        pkt = dot1q(pkt, typ, vid=vid + 1)
        typ = 0x8100
    return ether(pkt, typ)


def test_mutated_frames_decode_identically() -> None:
    frames = _mutations(_edge_frames(), random.Random(11))
    assert len(frames) > 8_000
    assert both_ways(RecordBatch.from_packets(frames)) == []


def _wifi_frames() -> list[bytes]:
    """802.11 frames as monitor mode writes them, each shape the pass takes or hands back:
    data with and without QoS, HT Control, four addresses (with and without mesh control),
    an A-MSDU, a fragment, protected, null and management frames; LLC with SNAP for IPv4,
    IPv6 and ARP, a CDP-style OUI, a bridged (RFC 2684) PDU, spanning tree and plain LLC."""
    seg = tcp(S, D, 1234, 80, b"x" * 30, flags="PA")
    v4 = rf.SNAP_IP + b"\x08\x00" + ipv4(S, D, seg, 6)
    v6 = rf.SNAP_IP + b"\x86\xdd" + ipv6(S6, D6, udp(S6, D6, 3, 4, b"six"), 17)
    bodies = [
        v4,
        v6,
        rf.SNAP_IP + b"\x08\x06" + bytes(28),
        b"\xaa\xaa\x03\x00\x00\x0c\x20\x00" + bytes(20),  # Cisco OUI: ends there
        b"\xaa\xaa\x03\x00\x80\xc2\x00\x07\x00\x00" + ether(ipv4(S, D, seg, 6), 0x0800),
        b"\x42\x42\x03" + bytes(35),  # a BPDU
        b"\xe0\xe0\x03" + bytes(20),  # IPX: LLC alone
        b"\xaa\xaa\x00\x01" + b"\x00\x00\x00\x08\x00" + ipv4(S, D, seg, 6),  # I format
    ]
    qos, amsdu = b"\x00\x00", b"\x80\x00"
    sub = b"".join([bytes(12), struct.pack(">H", len(v4)), v4])
    frames = [rf.wlan_data(b) for b in bodies]
    frames += [rf.wlan_data(b, qos=qos) for b in bodies[:2]]
    frames += [
        rf.wlan_data(v4, qos=qos, htc=True),
        rf.wlan_data(v4, flags=0x03),  # four addresses
        rf.wlan_data(v4, flags=0x03, qos=b"\x00\x01"),  # four, mesh control present
        rf.wlan_data(v4, flags=0x02, qos=b"\x00\x01"),  # three: the bit is ignored
        rf.wlan_data(sub, qos=amsdu),
        rf.wlan_data(v4, flags=0x05),  # more fragments
        rf.wlan_data(v4, flags=0x41),  # protected
        bytes([0x48, 0x01]) + bytes(22),  # null data
        bytes([0x80, 0x00]) + bytes(34),  # a beacon
        bytes([0xD4, 0x00]) + bytes(8),  # an ACK
    ]
    return frames


def _radiotapped(frames: list[bytes]) -> list[bytes]:
    """Each frame behind radiotap headers: no Flags, FCS, TSFT and FCS, data padding,
    an extended present bitmap, a bad FCS, a 0-length PSDU."""
    out = []
    for f in frames:
        out += [
            rf.radiotap(f),
            rf.radiotap(f, flags=0x10),
            rf.radiotap(f, flags=0x10, tsft=True),
            rf.radiotap(f, flags=0x20),
            rf.radiotap(f, flags=0x40),
            b"".join([b"\x00\x00", struct.pack("<HII", 13, 0x80000002, 0), b"\x00", f]),
            b"".join([b"\x00\x00", struct.pack("<HI", 8, 1 << 26), f]),
        ]
    return out


@pytest.mark.parametrize("linktype", [105, 127])
def test_mutated_wifi_frames_decode_identically(linktype: int) -> None:
    frames = _wifi_frames()
    if linktype == 127:
        frames = _radiotapped(frames)
    mutated = _mutations(frames, random.Random(13), reach=70)
    # _mutations leaves the first 12 bytes alone (Ethernet's addresses): here they are
    # radiotap's header and 802.11 frame control, so those are mutated too.
    rng = random.Random(14)
    for f in frames:
        for at in range(min(12, len(f))):
            for value in (0, 1, 0x02, 0x08, 0x10, 0x20, 0x40, 0x80, 0x88, 0xFF):
                g = bytearray(f)
                g[at] = value
                mutated.append(bytes(g))
        mutated.append(f[: rng.randrange(len(f) + 1)])
    assert len(mutated) > 5_000
    batch = RecordBatch.from_packets(frames + mutated, linktype=linktype)
    assert both_ways(batch) == []
    # Most of them the pass takes (the link and 802.11 header, LLC, IP, TCP or UDP).
    _, depth = _pass_only(RecordBatch.from_packets(frames, linktype=linktype))
    assert int((depth >= 3).sum()) >= len(frames) // 4


@pytest.mark.parametrize("linktype", [105, 127])
def test_snapped_wifi_frames_decode_identically(linktype: int) -> None:
    """Each Wi-Fi frame cut at every length with its wire length kept: the pass must read
    only the captured bytes (`end`) and judge lengths against the wire's (`wend`), as the
    NumPy decoders do (helper-38: with captures never snapped, either mix-up passed)."""
    frames = _wifi_frames()
    if linktype == 127:
        frames = _radiotapped(frames)
    cuts = [f[:k] for f in frames for k in range(len(f) + 1)]
    wire = [len(f) for f in frames for _ in range(len(f) + 1)]
    assert both_ways(RecordBatch.from_packets(cuts, linktype=linktype, wirelen=wire)) == []


def test_mutated_llc_frames_decode_identically() -> None:
    """802.3 length frames (incident 2's spanning tree among them) behind Ethernet, where
    ethernet.py hands LLC to the pass."""
    bodies = [f[24:] for f in _wifi_frames()[:8]]
    frames = [ether(b, len(b)) for b in bodies]
    assert both_ways(RecordBatch.from_packets(_mutations(frames, random.Random(15)))) == []


def test_mutated_tunnel_frames_decode_identically() -> None:
    frames = _mutations(_tunnel_frames(), random.Random(12), reach=150)
    assert len(frames) > 15_000
    assert both_ways(RecordBatch.from_packets(frames)) == []


def test_the_pass_stops_well_inside_the_engine_bound() -> None:
    assert prefix.MAX_STEPS < engine.MAX_ROUNDS


def test_header_bound_counts_the_headers_the_pass_decoded() -> None:
    """decode.too_deep at the same header with and without the pass (the pass decodes the
    first 12 of these chains' headers; the engine's rounds must count them)."""
    frames = [_deep_chain(u) for u in range(10, 16)]
    batch = RecordBatch.from_packets(frames)
    assert both_ways(batch) == []
    t = decode(batch)
    deep = (t.anom_inner >> np.uint64(Anomaly.DECODE_TOO_DEEP)) & np.uint64(1)
    assert deep.tolist() == [0] * 4 + [1] * 2  # 12 + 2 * 13 + 1 = 39 rounds: the last


def _ppi(frame: bytes) -> bytes:
    """An Ethernet frame behind a PPI header with no fields (LINKTYPE_PPI, PPI 1.0 section
    3: version 0, flags 0, length 8, DLT 1), which only ppi.py decodes."""
    return struct.pack("<BBHI", 0, 0, 8, 1) + frame


def _sll(frame: bytes, pkttype: int = 0) -> bytes:
    """An Ethernet frame as Linux cooked capture v1 has it (LINKTYPE_LINUX_SLL): packet
    type, ARPHRD_ETHER, address length and address, then the protocol (ETH_P_802_2 for an
    802.3 length) and the payload."""
    typ = struct.unpack(">H", frame[12:14])[0]
    proto = 4 if typ <= 1500 else typ
    return b"".join(
        [
            struct.pack(">HHH", pkttype, 1, 6),
            frame[6:12],
            b"\x00\x00",
            struct.pack(">H", proto),
            frame[14:],
        ]
    )


def _sll2(frame: bytes, pkttype: int = 0) -> bytes:
    """The same as Linux cooked capture v2 has it (LINKTYPE_LINUX_SLL2): protocol, reserved,
    interface index, ARPHRD_ETHER, packet type, address length, address (8 bytes)."""
    typ = struct.unpack(">H", frame[12:14])[0]
    proto = 4 if typ <= 1500 else typ
    head = struct.pack(">HHIHBB", proto, 0, 0x01020304 + pkttype, 1, pkttype, 6)
    return b"".join([head, frame[6:12], b"\x00\x00", frame[14:]])


def _cooked(wrap: Callable[[bytes, int], bytes]) -> list[bytes]:
    """The edge frames cooked with each packet type (PACKET_HOST .. PACKET_OUTGOING and
    PACKET_KERNEL), and protocols the pass must stop at or step aside for: 0 (no
    EtherType), ETH_P_802_3 (1), ETH_P_802_2 (4) and 1500, 1535, 1536."""
    frames = [wrap(f, k % 8) for k, f in enumerate(_edge_frames())]
    for proto in (0, 1, 4, 1500, 1535, 1536):
        body = rf.SNAP_IP + b"\x08\x00" + ipv4(S, D, udp(S, D, 1, 2, b"x"), 17)
        frames.append(wrap(ether(body, proto if proto >= 1536 else len(body)), 4))
        cooked = bytearray(frames[-1])
        at = 14 if wrap is _sll else 0
        cooked[at : at + 2] = struct.pack(">H", proto)
        frames.append(bytes(cooked))
    return frames


@pytest.mark.parametrize(("linktype", "wrap"), [(113, _sll), (276, _sll2)])
def test_mutated_cooked_frames_decode_identically(
    linktype: int, wrap: Callable[[bytes, int], bytes]
) -> None:
    """tcpdump -i any: the cooked header, then what the pass takes on from it, mutated;
    and every frame cut at every length, its wire length kept."""
    frames = _cooked(wrap)
    mutated = _mutations(frames, random.Random(16), reach=60)
    for f in frames:
        for at in range(min(12, len(f))):
            for value in (0, 1, 4, 0x08, 0x60, 0x86, 0xFF):
                g = bytearray(f)
                g[at] = value
                mutated.append(bytes(g))
    assert len(mutated) > 5_000
    assert both_ways(RecordBatch.from_packets(frames + mutated, linktype=linktype)) == []
    cuts = [f[:k] for f in frames[:40] for k in range(len(f) + 1)]
    wire = [len(f) for f in frames[:40] for _ in range(len(f) + 1)]
    snapped = RecordBatch.from_packets(cuts, linktype=linktype, wirelen=wire)
    assert both_ways(snapped) == []
    # The pass takes the cooked header and what follows in one call.
    t, depth = _pass_only(RecordBatch.from_packets(frames, linktype=linktype))
    assert int((depth >= 3).sum()) >= len(frames) // 2
    assert set(t.way.tolist()) == {1, 2}  # PACKET_OUTGOING is WAY_OUT, the rest WAY_IN


def _radiotap(frame: bytes) -> bytes:
    """The same payload as an 802.11 QoS data frame behind radiotap, LLC/SNAP for an
    EtherType, the 802.3 frame's own LLC header otherwise."""
    typ = frame[12:14]
    body = frame[14:] if struct.unpack(">H", typ)[0] <= 1500 else rf.SNAP_IP + typ + frame[14:]
    return rf.radiotap(rf.wlan_data(body, qos=b"\x00\x00"), flags=0x10)


@pytest.mark.parametrize(("linktype", "wrap"), [(192, _ppi), (127, _radiotap)])
def test_the_pass_resumes_behind_headers_it_has_no_twin_for(
    linktype: int, wrap: Callable[[bytes], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a link header only the NumPy decoders know, the pass takes each packet on
    from where they leave it (a second call), writing what they would have: the mix, and
    chains as deep as the header bound, decode identically both ways."""
    frames = [wrap(f) for _, f in mixed_capture(3000, seed=5)]
    frames += [wrap(_deep_chain(u)) for u in range(10, 16)]
    batch = RecordBatch.from_packets(frames, linktype=linktype)
    calls = []

    def counted(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return decode_prefix(*args, **kwargs)

    monkeypatch.setattr(engine, "decode_prefix", counted)
    assert both_ways(batch) == []
    assert len(calls) >= 2  # the link round, then the pass again


def _etag_chain(tags: int) -> bytes:
    """Ethernet, `tags` 802.1BR E-Tags (EtherType 0x893F, a 6-byte tag, then the type: no
    compiled twin), then IPv4 and TCP (twins): tags + 3 headers."""
    a, b = "198.51.100.1", "198.51.100.2"
    body, typ = ipv4(a, b, tcp(a, b, 1234, 80, b""), 6), 0x0800
    for _ in range(tags):
        body, typ = bytes(6) + struct.pack(">H", typ) + body, 0x893F
    return bytes(12) + struct.pack(">H", typ) + body


def test_the_resumed_pass_stops_at_the_header_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass resuming after 34-41 NumPy rounds may only take a packet to the 40th
    header (engine.MAX_ROUNDS): with 38 tags or more (41 headers) it is decode.too_deep,
    as without the pass, where it once decoded on to TCP."""
    calls = []

    def counted(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return decode_prefix(*args, **kwargs)

    monkeypatch.setattr(engine, "decode_prefix", counted)
    tags = range(34, 42)
    batch = RecordBatch.from_packets([_etag_chain(n) for n in tags])
    assert both_ways(batch) == []
    t = decode(batch)
    deep = (t.anom_outer >> np.uint64(Anomaly.DECODE_TOO_DEEP)) & np.uint64(1)
    assert deep.tolist() == [int(n + 3 > engine.MAX_ROUNDS) for n in tags]
    assert [int(p) for p in t.outer.dport] == [
        80 if n + 3 <= engine.MAX_ROUNDS else 0 for n in tags
    ]
    assert len(calls) >= 2


def test_snapped_frames_decode_identically() -> None:
    """Captured bytes shorter than the wire: lengths are checked against the wire length."""
    frames = _edge_frames()
    cuts = [f[: max(14, len(f) - k)] for f in frames for k in (1, 8, 20, 40)]
    wire = [len(f) for f in frames for _ in (1, 8, 20, 40)]
    assert both_ways(RecordBatch.from_packets(cuts, wirelen=wire)) == []


def test_pass_finishes_the_plain_packets_and_no_others() -> None:
    frames = _edge_frames()
    t = PacketTable(RecordBatch.from_packets(frames))
    finished = decode_prefix(t, REGISTRY, DEFAULT_TUNNEL_DEPTH)
    done = (t.ns == NS.DONE).tolist()
    # Ethernet/IPv4/TCP untagged, with one, two and three tags; UDP to an unbound port;
    # SCTP (unbound); IPv4 options (verified, then TCP); IPv6/TCP and IPv6/UDP. Not: the
    # 802.3 length field, VXLAN holding no Ethernet II frame, ICMP (bound), IPv6 ext, an
    # unknown outermost EtherType (flagged by the engine).
    assert done == [1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0]
    assert finished == sum(done)
    # Where it stopped, the cursor is the NumPy decoders' next step.
    assert (int(t.ns[4]), int(t.key[4]), int(t.vlan_n[4])) == (NS.ETHERTYPE, 0x8100, 0)
    assert (int(t.ns[6]), int(t.key[6]), int(t.tunnels[6])) == (NS.FRAME, 1, 1)
    assert (int(t.ns[7]), int(t.key[7])) == (NS.IPPROTO, 1)
    assert (int(t.ns[12]), int(t.key[12])) == (NS.ETHERTYPE, 0x86DD)
    assert (int(t.ns[13]), int(t.key[13])) == (NS.ETHERTYPE, 0x88B5)


def test_pass_finishes_the_tunnelled_packets() -> None:
    frames = _tunnel_frames()
    t = PacketTable(RecordBatch.from_packets(frames))
    depth = np.zeros(t.n, dtype=np.uint8)
    decode_prefix(t, REGISTRY, DEFAULT_TUNNEL_DEPTH, depth)
    done = (t.ns == NS.DONE).tolist()
    # All but the fourth nested GRE header (tunnel.too_deep is the engine's).
    assert done == [i != 12 for i in range(len(frames))]
    assert (int(t.ns[12]), int(t.key[12]), int(t.tunnels[12])) == (NS.IPPROTO, 47, 3)
    # Headers: eth ip gre ip tcp; eth ip gre eth vlan ip udp (+ unbound port 53); eth ip
    # gre ppp ip tcp; eth ip ip tcp; eth ip udp vxlan eth ip tcp.
    assert [int(depth[i]) for i in (0, 2, 4, 7, 10)] == [5, 8, 6, 4, 7]
    kinds = [Tunnel(k).name for k in t.tunnel[[0, 4, 7, 8, 9, 10, 11]]]
    assert kinds == ["GRE", "PPTP", "IPIP", "IPIP", "IP6", "VXLAN", "VXLAN"]
    assert int(t.gre_key[4]) == 42 and int(t.vni[10]) == 77
    assert int(t.inner_raw.sport[0]) == 1234 and int(t.inner_raw.dport[10]) == 80


def test_a_column_of_the_wrong_type_is_refused() -> None:
    t = PacketTable(RecordBatch.from_packets(_edge_frames()[:2]))
    t.outer.src4 = t.outer.src4.astype(np.int64)
    with pytest.raises(TypeError, match="src4"):
        decode_prefix(t, REGISTRY, DEFAULT_TUNNEL_DEPTH)


def test_checksum_verdicts_match_header_bytes() -> None:
    """csum_ok from the pass: a good header verifies, one flipped bit does not."""
    good = ether(ipv4(S, D, tcp(S, D, 1, 2, b""), 6), 0x0800)
    bad = bytearray(good)
    bad[14 + 10] ^= 0x01  # the checksum's low byte
    t = decode(RecordBatch.from_packets([good, bytes(bad)]))
    assert t.outer.csum_ok.tolist() == [True, False]
    assert t.outer.checksum[0] == struct.unpack("!H", good[24:26])[0]


# --- the pass follows the registry, the one dispatch table ---------------------------------


def _change_registry(
    monkeypatch: pytest.MonkeyPatch,
    drop: tuple[NS, int] | None = None,
    add: tuple[NS, int, str] | None = None,
) -> None:
    """REGISTRY itself changed for one test (one binding dropped or IPv4 bound to a new key),
    restored after it: udp.py's payload port consults REGISTRY, so the NumPy decoders see the
    change too."""
    from netsleuth.decode import ipv4 as ipv4_decoder

    kept = [b for b in REGISTRY.bindings if (b.ns, b.key) != drop]
    monkeypatch.setattr(REGISTRY, "bindings", kept)
    monkeypatch.setattr(REGISTRY, "_flat", None)
    if add is not None:
        REGISTRY.register(add[0], add[1], add[2], ipv4_decoder.decode)


def test_the_compiled_dispatch_is_generated_from_the_registry() -> None:
    """The bindings the pass takes are the ones the hand-written switch of _prefix.c held
    before it was generated (commit 9c3fe33), each with the twin it called there, and the
    Wi-Fi link types, LLC and the Linux cooked link types added since."""
    steps = compiled_steps(REGISTRY)
    assert len(steps) == len(REGISTRY.bindings) + 1 and steps[0] == 0
    taken = {(b.ns.name, b.key): steps[i] for i, b in enumerate(REGISTRY.bindings, 1) if steps[i]}
    c = _prefix
    assert taken == {
        ("LINKTYPE", 1): c.STEP_LINK_ETHERNET,
        ("FRAME", 1): c.STEP_ETHERNET,
        ("TUNNEL_PROTO", 0x6558): c.STEP_ETHERNET,
        ("ETHERTYPE", 0x8100): c.STEP_VLAN,
        ("ETHERTYPE", 0x88A8): c.STEP_VLAN,
        ("ETHERTYPE", 0x9100): c.STEP_VLAN,
        ("ETHERTYPE", 0x0800): c.STEP_IPV4,
        ("TUNNEL_PROTO", 0x0800): c.STEP_IPV4,
        ("PPP", 0x0021): c.STEP_IPV4,
        ("IPPROTO", 4): c.STEP_IPIP,
        ("ETHERTYPE", 0x86DD): c.STEP_IPV6,
        ("TUNNEL_PROTO", 0x86DD): c.STEP_IPV6,
        ("PPP", 0x0057): c.STEP_IPV6,
        ("IPPROTO", 41): c.STEP_IP6,
        ("IPPROTO", 6): c.STEP_TCP,
        ("IPPROTO", 17): c.STEP_UDP,
        ("IPPROTO", 47): c.STEP_GRE,
        ("TUNNEL_PROTO", 0x880B): c.STEP_PPP,
        ("UDPPORT", 4789): c.STEP_VXLAN,
        ("UDPPORT", 8472): c.STEP_VXLAN,
        ("LINKTYPE", 127): c.STEP_LINK_RADIOTAP,
        ("LINKTYPE", 105): c.STEP_LINK_IEEE80211,
        ("FRAME", 2): c.STEP_LLC,
        ("LINKTYPE", 113): c.STEP_LINK_SLL,
        ("LINKTYPE", 276): c.STEP_LINK_SLL2,
    }


def _vxlan_and_port_9999() -> RecordBatch:
    v4 = ipv4(S, D, tcp(S, D, 1234, 80, b"x" * 30, flags="PA"), 6)
    vx = vxlan(ether(v4, 0x0800), vni=77)
    return RecordBatch.from_packets(
        [
            ether(ipv4(S, D, udp(S, D, 49152, 4789, vx), 17), 0x0800),
            ether(ipv4(S, D, udp(S, D, 49152, 9999, v4), 17), 0x0800),
        ]
    )


def _pass_only(batch: RecordBatch) -> tuple[PacketTable, np.ndarray]:
    """The table after the compiled pass alone, and the headers it decoded per packet."""
    t = PacketTable(batch)
    depth = np.zeros(t.n, dtype=np.uint8)
    decode_prefix(t, REGISTRY, DEFAULT_TUNNEL_DEPTH, depth)
    return t, depth


def test_a_binding_removed_from_the_registry_is_not_taken_by_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = _vxlan_and_port_9999()
    t, _ = _pass_only(batch)
    assert (int(t.tunnels[0]), int(t.vni[0])) == (1, 77)
    _change_registry(monkeypatch, drop=(NS.UDPPORT, 4789))
    t, _ = _pass_only(batch)
    # Port 4789 is unbound now: the descent ends at the UDP payload, no tunnel entered.
    assert (int(t.tunnels[0]), int(t.ns[0]), int(t.nip[0])) == (0, NS.DONE, 1)
    assert both_ways(batch) == []


def test_a_binding_added_to_the_registry_is_taken_by_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = _vxlan_and_port_9999()
    t, _ = _pass_only(batch)
    assert (int(t.ns[1]), int(t.nip[1])) == (NS.DONE, 1)  # 9999: unbound, ends there
    _change_registry(monkeypatch, add=(NS.UDPPORT, 9999, "ipv4-in-udp-test"))
    t, depth = _pass_only(batch)
    # eth ip udp, then the new binding: ip tcp, all in the compiled pass.
    assert (int(t.ns[1]), int(t.nip[1]), int(depth[1])) == (NS.DONE, 2, 5)
    assert int(t.inner_raw.dport[1]) == 80
    assert both_ways(batch) == []


def test_a_step_code_the_pass_does_not_know_is_refused() -> None:
    t = PacketTable(_vxlan_and_port_9999())
    cols = [loop_column(getattr(t, n), d, n, writable=True) for n, d in prefix._TABLE]
    cols.append(np.zeros(t.n, dtype=np.uint8))
    for layer in (t.outer, t.inner_raw):
        cols += [loop_column(getattr(layer, n), d, n, writable=True) for n, d in prefix._LAYER]
    bad = bytes([0, 200])
    with pytest.raises(ValueError, match="STEP_"):
        _prefix.prefix(t.v.buf, tuple(cols), REGISTRY.flat_table(), bad, 3, prefix.MAX_STEPS)
