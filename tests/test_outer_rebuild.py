"""The outer reassembly's batch path (checks/outer_rebuild.py): tunnel datagrams in outer
IPv4 fragments that begin and complete within one batch are rebuilt with NumPy and the
compiled walk, with the result the fragment-by-fragment tracker gives. The tracker is the
reference: fed one fragment a batch, no datagram ever completes within a batch, so every
fragment goes through it. Every check's findings (the inner packets' too: they come from
the rebuilt datagrams), frames and evidence must be the same while no bound evicts (the
one difference, on purpose, is its own test below). tshark cross-checks the rebuilt
datagrams in test_outer_fragments.py."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.checks import _trains, collect, new_checks, observe_all
from netsleuth.checks.outer_rebuild import _fix_headers
from netsleuth.craft.checksum import inet_checksum
from netsleuth.craft.l3 import DF, MF
from netsleuth.decode import decode
from tests.fragutil import interleave

Frame = tuple[bytes, int]  # (frame, wire length)
Found = tuple[str, str | None, int, tuple[int, ...], str]


def scan(frames: list[Frame], *, one_by_one: bool) -> list[Found]:
    checks = new_checks()
    data, wire = [f for f, _ in frames], [w for _, w in frames]
    if one_by_one:
        for i, (f, w) in enumerate(frames):
            b = RecordBatch.from_packets([f], wirelen=[w], ts_ns=[i * 1000])
            observe_all(checks, decode(replace(b, frame=np.array([i + 1], dtype=np.int64))))
    else:
        ts = [i * 1000 for i in range(len(frames))]
        observe_all(checks, decode(RecordBatch.from_packets(data, wirelen=wire, ts_ns=ts)))
    return sorted((f.id, f.layer, f.count, f.packets, repr(f.evidence)) for f in collect(checks))


def inner(rng: random.Random, ident: int) -> bytes:
    """An inner Ethernet frame: a TCP segment, or a fragment of an inner train (whose
    verdicts come from the rebuilt datagrams only), some of them poison (no payload)."""
    src, dst = "10.1.0.1", f"10.1.{rng.randrange(3)}.2"
    if rng.random() < 0.3:
        size = rng.choice([0, 8, 400])
        ip = craft.ipv4(src, dst, bytes(size), 17, ident=ident % 4, frag_off=8 * rng.randrange(3))
        return craft.ether(ip, 0x0800)
    seg = craft.tcp(src, dst, 40000, 443, bytes(rng.randrange(200, 1400)), flags="A")
    return craft.ether(craft.ipv4(src, dst, seg, 6, ident=ident), 0x0800)


def datagram(rng: random.Random, ident: int) -> list[Frame]:
    """One tunnel datagram (VXLAN, GRE-TEB, or UDP to no tunnel port) in outer fragments:
    in order, reversed, duplicated, overlapping, with a hole, cut by the snap length,
    with IP options or DF in its outer header."""
    s, d = "203.0.113.1", f"203.0.113.{2 + rng.randrange(2)}"
    kind = rng.choice(["vxlan", "gre", "udp"])
    if kind == "gre":
        payload, proto = craft.gre(inner(rng, ident), 0x6558), 47
    else:
        port = 4789 if kind == "vxlan" else 5353
        payload = craft.udp(s, d, 50000, port, craft.vxlan(inner(rng, ident), vni=7))
        proto = 17
    size = 8 * rng.randrange(1, max(2, len(payload) // 8))
    pieces = [(0, payload[:size], True), (size, payload[size:], False)]
    if rng.random() < 0.2 and len(payload) > size + 16:  # three pieces
        pieces = [pieces[0], (size, payload[size : size + 16], True)]
        pieces.append((size + 16, payload[size + 16 :], False))
    if rng.random() < 0.1:  # an overlap with other bytes
        pieces.append((0, bytes(len(pieces[0][1])), True))
    if rng.random() < 0.1:
        pieces.pop(rng.randrange(len(pieces)))  # a hole: never complete
    if rng.random() < 0.2:
        pieces.reverse()
    if rng.random() < 0.1:
        pieces.append(pieces[0])  # a mirror port's copy
    opts = b"\x01\x01\x01\x00" if rng.random() < 0.2 else b""
    flags = DF if rng.random() < 0.3 else 0
    out = []
    for off, data, more in pieces:
        ip = craft.ipv4(
            s,
            d,
            data,
            proto,
            ident=ident,
            frag_off=off,
            flags=flags | (MF if more else 0),
            options=opts,
        )
        frame = craft.ether(ip, 0x0800)
        wire = len(frame)
        if rng.random() < 0.03:
            frame = frame[: rng.randint(40, len(frame))]
        out.append((frame, wire))
    return out


def traffic(rng: random.Random) -> list[Frame]:
    """Datagrams interleaved, their ids from a small pool so keys recur."""
    trains = [datagram(rng, rng.randrange(6)) for _ in range(rng.randint(1, 25))]
    return interleave(trains, rng)


@pytest.mark.parametrize("seed", range(120))
def test_the_batch_path_rebuilds_as_the_tracker_does(seed: int) -> None:
    frames = traffic(random.Random(seed))
    assert scan(frames, one_by_one=False) == scan(frames, one_by_one=True)


def test_headers_are_fixed_as_rfc_791_says() -> None:
    """Total length set, MF and offset cleared, DF kept, checksum recomputed: the same
    header craft builds for the whole datagram (its checksum by RFC 1071)."""
    opts = b"\x01\x01\x01\x00"
    first = craft.ipv4("192.0.2.1", "192.0.2.2", bytes(16), 17, flags=DF | MF, options=opts)
    out = np.zeros(24 + 500 + 256, dtype=np.uint8)
    out[:24] = np.frombuffer(first[:24], dtype=np.uint8)
    _fix_headers(out, np.array([0]), np.array([24]), np.array([524]))
    whole = craft.ipv4("192.0.2.1", "192.0.2.2", bytes(500), 17, flags=DF, options=opts)
    assert out[:24].tobytes() == whole[:24]
    assert inet_checksum(out[:24].tobytes()) == 0


def test_gather_refuses_ranges_outside_its_buffers() -> None:
    src = np.arange(16, dtype=np.uint8)
    out = np.zeros(8, dtype=np.uint8)
    assert _trains.gather(src, np.array([2, 10]), np.array([3, 4]), out) == 7
    assert out[:7].tolist() == [2, 3, 4, 10, 11, 12, 13]
    with pytest.raises(ValueError, match="outside"):
        _trains.gather(src, np.array([14]), np.array([4]), out)  # past the source
    with pytest.raises(ValueError, match="outside"):
        _trains.gather(src, np.array([0]), np.array([9]), out)  # more than out holds
    with pytest.raises(ValueError, match="share memory"):
        _trains.gather(src, np.array([0]), np.array([4]), src[8:])
    with pytest.raises(ValueError, match="8-byte integers"):  # int32 pairs, not one int64
        _trains.gather(src, np.array([2, 0], dtype=np.int32), np.array([3]), out)
    with pytest.raises(ValueError, match="8-byte integers"):
        _trains.gather(src, np.array([2.0]), np.array([3]), out)


def gre_fragment(ident: int, off: int, data: bytes, more: bool) -> bytes:
    ip = craft.ipv4(
        "203.0.113.1", "203.0.113.2", data, 47, ident=ident, frag_off=off, flags=MF if more else 0
    )
    return craft.ether(ip, 0x0800)


def test_a_datagram_settled_in_its_batch_takes_no_slot_of_the_bound() -> None:
    """The one place the batch path and the tracker part, on purpose: a datagram that
    begins and completes within one batch is rebuilt without being held, so the bound
    (1024 datagrams held) cannot drop it, where the tracker, holding it while 1024 newer
    datagrams open, drops and reports it (a helper's reproducer). The batch path judges
    more; what the tracker's bound drops is still reported, never judged."""
    inner_frame = craft.ether(
        craft.ipv4("10.0.0.1", "10.0.0.2", craft.tcp("10.0.0.1", "10.0.0.2", 1, 2, bytes(300)), 6),
        0x0800,
    )
    p = craft.gre(inner_frame, 0x6558)
    frames = [gre_fragment(1, 0, p[:256], True)]
    frames += [gre_fragment(1000 + i, 0, p[:256], True) for i in range(1024)]
    frames += [gre_fragment(1, 256, p[256:], False)]
    whole = {f[0]: f[3] for f in scan([(f, len(f)) for f in frames], one_by_one=False)}
    alone = {f[0]: f[3] for f in scan([(f, len(f)) for f in frames], one_by_one=True)}
    assert whole["tunnel.outer_fragmented"] == (1, 1026)
    assert "tunnel.reassembly_bounded" not in whole
    assert alone["tunnel.reassembly_bounded"] == (1, 2)
    assert "tunnel.outer_fragmented" not in alone
