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
from pathlib import Path

import numpy as np
import pytest

from netsleuth.capture import RecordBatch, open_capture
from netsleuth.craft import incidents
from netsleuth.craft.l2 import dot1q, ether
from netsleuth.craft.l3 import ipv4, ipv6, ipv6_ext
from netsleuth.craft.l4 import icmp, tcp, udp
from netsleuth.craft.mix import mixed_capture
from netsleuth.decode import REGISTRY, PacketTable, decode
from netsleuth.decode.prefix import decode_prefix
from netsleuth.decode.table import IP_FIELDS, NS
from netsleuth.errors import InputError


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
    frames.append(ether(ipv4(S, D, udp(S, D, 53, 4789, bytes(30)), 17), 0x0800))  # VXLAN port
    frames.append(ether(ipv4(S, D, icmp(8, 0, b"ping"), 1), 0x0800))
    frames.append(ether(ipv4(S, D, b"\x00" * 24, 132), 0x0800))  # SCTP: unbound protocol
    frames.append(ether(ipv4(S, D, seg, 6, options=b"\x01\x01\x01\x00"), 0x0800))
    frames.append(ether(ipv6(S6, D6, tcp(S6, D6, 1, 2, b"six"), 6), 0x86DD))
    frames.append(ether(ipv6(S6, D6, udp(S6, D6, 3, 4, b"six"), 17), 0x86DD))
    frames.append(ether(ipv6(S6, D6, ipv6_ext(tcp(S6, D6, 1, 2, b""), 6), 0), 0x86DD))
    frames.append(ether(b"\x00" * 46, 0x88B5))  # an EtherType nothing decodes
    return frames


def _mutations(frames: list[bytes], rng: random.Random) -> list[bytes]:
    out = []
    for f in frames:
        for at in range(12, min(len(f), 80)):
            for value in (0, 1, 0x0F, 0x40, 0x45, 0x46, 0x4F, 0x60, 0x80, 0xFF):
                g = bytearray(f)
                g[at] = value
                out.append(bytes(g))
        for cut in range(0, min(len(f), 90), 3):
            out.append(f[:cut])
        for _ in range(40):
            g = bytearray(f)
            for _ in range(rng.randrange(1, 4)):
                g[rng.randrange(len(g))] = rng.randrange(256)
            out.append(bytes(g[: rng.randrange(len(g) + 1)]))
    return out


def test_mutated_frames_decode_identically() -> None:
    frames = _mutations(_edge_frames(), random.Random(11))
    assert len(frames) > 8_000
    assert both_ways(RecordBatch.from_packets(frames)) == []


def test_snapped_frames_decode_identically() -> None:
    """Captured bytes shorter than the wire: lengths are checked against the wire length."""
    frames = _edge_frames()
    cuts = [f[: max(14, len(f) - k)] for f in frames for k in (1, 8, 20, 40)]
    wire = [len(f) for f in frames for _ in (1, 8, 20, 40)]
    assert both_ways(RecordBatch.from_packets(cuts, wirelen=wire)) == []


def test_pass_finishes_the_plain_packets_and_no_others() -> None:
    frames = _edge_frames()
    t = PacketTable(RecordBatch.from_packets(frames))
    finished = decode_prefix(t, REGISTRY.flat_table())
    done = (t.ns == NS.DONE).tolist()
    # Ethernet/IPv4/TCP untagged, one and two tags; UDP to an unbound port; SCTP (unbound);
    # IPv6/TCP and IPv6/UDP. Not: three tags, 802.3 length field, VXLAN (UDP 4789 is bound),
    # ICMP (bound), IPv4 options (verified, then TCP: finished), IPv6 ext, unknown EtherType.
    assert done == [1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0]
    assert finished == sum(done)
    # Where it stopped, the cursor is the NumPy decoders' next step.
    assert (int(t.ns[3]), int(t.key[3]), int(t.vlan_n[3])) == (NS.ETHERTYPE, 0x8100, 2)
    assert (int(t.ns[6]), int(t.key[6])) == (NS.UDPPORT, 4789)
    assert (int(t.ns[7]), int(t.key[7])) == (NS.IPPROTO, 1)
    assert (int(t.ns[12]), int(t.key[12])) == (NS.ETHERTYPE, 0x86DD)


def test_a_column_of_the_wrong_type_is_refused() -> None:
    t = PacketTable(RecordBatch.from_packets(_edge_frames()[:2]))
    t.outer.src4 = t.outer.src4.astype(np.int64)
    with pytest.raises(TypeError, match="src4"):
        decode_prefix(t, REGISTRY.flat_table())


def test_checksum_verdicts_match_header_bytes() -> None:
    """csum_ok from the pass: a good header verifies, one flipped bit does not."""
    good = ether(ipv4(S, D, tcp(S, D, 1, 2, b""), 6), 0x0800)
    bad = bytearray(good)
    bad[14 + 10] ^= 0x01  # the checksum's low byte
    t = decode(RecordBatch.from_packets([good, bytes(bad)]))
    assert t.outer.csum_ok.tolist() == [True, False]
    assert t.outer.checksum[0] == struct.unpack("!H", good[24:26])[0]
