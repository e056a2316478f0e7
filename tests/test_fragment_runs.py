"""Runs of one key's fragments taken at once (fragments.at_once: Datagram.extend in the
fragment audit's _track and the outer reassembly's _extend) leave every finding, frame,
evidence entry and flagged key as taking them one by one does, bounds evicting or not:
FragmentSmack-style trains (many small fragments with MF set, at random offsets, copies
among them), some finished by a last fragment, some spread past the 30 s timeout, over
several batches, with the trackers' bounds made small."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.checks import collect, fragments, new_checks, observe_all, outer_reassembly
from netsleuth.craft.l3 import MF
from netsleuth.decode import decode
from netsleuth.reassembly import Fragment

D = "198.51.100.7"
SECOND = 1_000_000_000


def smack(rng: random.Random, trains: int) -> tuple[list[bytes], list[int]]:
    """Trains of three kinds, one after another: FragmentSmack's (MF set, random offsets,
    never complete); whole VXLAN datagrams cut into 8-byte fragments, first fragment first
    and the rest shuffled (so a run that holds the last one completes a datagram the outer
    reassembly holds with its ports); and either, with 40 s gaps inside."""
    frames: list[bytes] = []
    stamps: list[int] = []
    clock = 0
    for k in range(trains):
        src = f"192.0.2.{1 + k % 200}"
        ident = rng.randrange(1 << 16)
        if rng.random() < 0.3:
            inner = craft.ether(
                craft.ipv4("10.0.0.1", "10.0.0.2", bytes(rng.randrange(60)), 17), 0x0800
            )
            dgram = craft.udp(src, D, 50000, 4789, craft.vxlan(inner, vni=7))
            parts = craft.fragment_ipv4(
                src, D, dgram, 17, sizes=[8] * (len(dgram) // 8), ident=ident
            )
            rest = parts[1:]
            rng.shuffle(rest)
            train = [parts[0], *rest]
        else:
            train = []
            for _ in range(rng.choice([2, 3, 30, 30, 30])):
                off = 8 * rng.randrange(64)
                last = rng.random() < 0.03
                body = bytes([rng.randrange(256)]) * rng.choice([0, 8, 8, 16])
                flags = 0 if last else MF
                train.append(craft.ipv4(src, D, body, 17, ident=ident, frag_off=off, flags=flags))
        for i, ip in enumerate(train):
            frames.append(craft.ether(ip, 0x0800))
            # Captures' clocks step back too: a run's spread is from its first to its latest.
            step = rng.choice([0, 1000, 1000, 40 * SECOND, -40 * SECOND]) if i else 1000
            clock += step
            stamps.append(clock)
            if rng.random() < 0.1:  # a mirror port's copy
                frames.append(frames[-1])
                stamps.append(clock)
    return frames, stamps


def findings(frames: list[bytes], stamps: list[int], cuts: list[int]) -> list[tuple[object, ...]]:
    checks = new_checks()
    for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True):
        batch = RecordBatch.from_packets(frames[a:b], ts_ns=stamps[a:b])
        batch.frame[:] = np.arange(a + 1, b + 1)
        observe_all(checks, decode(batch))
    out = [(f.id, f.layer, f.count, f.packets, repr(f.evidence)) for f in collect(checks)]
    audit = next(c for c in checks if isinstance(c, fragments.FragmentAudit))
    return [*sorted(out), ("flagged", repr(sorted(audit.flagged_keys.items())))]


@pytest.mark.parametrize("seed", range(36))
def test_runs_taken_at_once_change_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    frames, stamps = smack(rng, 120)
    cuts = sorted(rng.sample(range(1, len(frames)), 8))
    small = seed % 3  # bounds that evict: 1 by count, 2 by bytes (a run alone can exceed them)
    if small:
        kb = 2000 if small == 1 else 200
        bounds = dict(fragments.FragmentAudit.__init__.__kwdefaults__ or {})
        bounds.update(max_open=20, max_bytes=20 * kb)
        monkeypatch.setattr(fragments.FragmentAudit.__init__, "__kwdefaults__", bounds)
        monkeypatch.setattr(outer_reassembly, "MAX_OPEN", 10)
        monkeypatch.setattr(outer_reassembly, "MAX_BYTES", 10 * kb)
    taken = findings(frames, stamps, cuts)
    calls: list[int] = []
    at_once = fragments.at_once

    def one_by_one(*args: Any, **kwargs: Any) -> list[tuple[int, int, bool]]:
        runs = at_once(*args, **kwargs)
        calls.append(sum(whole for _, _, whole in runs))
        return [(a, b, False) for a, b, _ in runs]

    with monkeypatch.context() as m:
        m.setattr(fragments, "at_once", one_by_one)
        m.setattr(outer_reassembly, "at_once", one_by_one)
        alone = findings(frames, stamps, cuts)
    assert sum(calls) > 0  # runs the first pass took at once
    assert taken == alone
    if small:
        assert any(t[0] == "fragment.evicted" for t in taken)


@pytest.mark.parametrize("seed", range(300))
def test_extend_leaves_what_add_leaves(seed: int) -> None:
    r = random.Random(seed)

    def some(n: int) -> list[tuple[Fragment, int]]:
        out = []
        for _ in range(n):
            off, size = 8 * r.randrange(40), r.choice([0, 8, 16, 24, 40])
            end = off + r.choice([size, size, 0])
            out.append((Fragment(off, bytes(size), r.random() < 0.8, r.randrange(99)), end))
        return out

    one, bulk = (fragments.Datagram(b"k", "outer", 4, 0) for _ in range(2))
    for frag, end in some(r.randrange(4)):  # what the datagram held already
        one.add(frag, end)
        bulk.add(frag, end)
    run = some(r.randrange(30))
    for frag, end in run:
        one.add(frag, end)
    bulk.extend([f for f, _ in run], [e for _, e in run])
    fields = ("count", "frames", "frags", "nbytes", "last_end", "starts", "ends")
    assert [getattr(bulk, k) for k in fields] == [getattr(one, k) for k in fields]
    assert bulk.complete() == one.complete()


def test_a_run_after_its_datagram_expired_starts_a_new_one() -> None:
    """The outer reassembly holds a UDP datagram waiting for its ports (a middle fragment,
    t = 0); 40 s later, in the next batch, the whole datagram comes again: its middle
    fragments in a row (a run), then its first. The held one expired before the run came
    (Linux: ip_expire), so the rebuilt datagram is the new one, without the old frame."""
    src = "192.0.2.9"
    inner = craft.ether(craft.ipv4("10.0.0.1", "10.0.0.2", bytes(40), 17), 0x0800)
    dgram = craft.udp(src, D, 50000, 4789, craft.vxlan(inner, vni=7))
    parts = [
        craft.ether(p, 0x0800)
        for p in craft.fragment_ipv4(src, D, dgram, 17, sizes=[8] * (len(dgram) // 8), ident=5)
    ]
    # Two fragments of another datagram, the second ending the run before the first.
    other = craft.ether(craft.ipv4(src, D, bytes(8), 17, ident=6, frag_off=8, flags=MF), 0x0800)
    frames = [parts[1], other, *parts[1:], other, parts[0]]
    stamps = [0] + [40 * SECOND] * (len(frames) - 1)
    got = findings(frames, stamps, [1])
    (carried,) = [f for f in got if f[0] == "tunnel.outer_fragmented"]
    assert carried[2] == len(parts)  # the new datagram's fragments only: frame 1 expired
    assert carried[3] == (*range(3, len(parts) + 2), len(frames))


def test_a_run_into_a_held_datagram_older_than_others_is_evicted_as_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IP in IP (a tunnel's protocol: a datagram the bound drops is reported): one
    datagram held without its first fragment, the oldest, then five others; in the next
    batch, five more of its middle fragments. One by one, the byte bound evicts it
    midway and the rest of the run opens a new datagram, which is evicted in turn
    (helper-33's case: taken at once, it was evicted once, with the whole run)."""

    def frag(ident: int, off: int, size: int = 8) -> bytes:
        ip = craft.ipv4("192.0.2.1", D, bytes(size), 4, ident=ident, frag_off=off, flags=MF)
        return craft.ether(ip, 0x0800)

    frames = [frag(1, 8), *(frag(100 + k, 8, 64) for k in range(5))]
    cut = len(frames)
    frames += [frag(1, 16 + 8 * j) for j in range(5)]
    stamps = [0] + [1] * 5 + [2] * 5
    monkeypatch.setattr(outer_reassembly, "MAX_BYTES", 1400)
    taken = findings(frames, stamps, [cut])
    at_once = fragments.at_once

    def one_by_one(*args: Any, **kwargs: Any) -> list[tuple[int, int, bool]]:
        return [(a, b, False) for a, b, _ in at_once(*args, **kwargs)]

    monkeypatch.setattr(outer_reassembly, "at_once", one_by_one)
    alone = findings(frames, stamps, [cut])
    assert taken == alone
    (bounded,) = [f for f in alone if f[0] == "tunnel.reassembly_bounded"]
    assert bounded[2] == 3  # the held one, then two more as the run's new datagram grew
