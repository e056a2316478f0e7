"""Runs of one key's fragments taken at once (fragments.at_once: Datagram.extend in the
fragment audit's _track and the outer reassembly's _extend) leave every finding, frame,
evidence entry and flagged key as taking them one by one does, bounds evicting or not:
FragmentSmack-style trains (many small fragments with MF set, at random offsets, copies
among them), some finished by a last fragment, some spread past the 30 s timeout, over
several batches, with the trackers' bounds made small."""

from __future__ import annotations

import random
from typing import Any, cast

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
    return clocked([step for train in smack_trains(rng, trains) for step in train])


def interleaved(rng: random.Random, trains: int) -> tuple[list[bytes], list[int]]:
    """smack's trains, a few at a time interleaved at random (each in its own order), as
    FragmentSmack sends them."""
    pending = smack_trains(rng, trains)
    live: list[list[tuple[bytes, int]]] = []
    out: list[tuple[bytes, int]] = []
    while pending or live:
        while pending and len(live) < 4:
            live.append(pending.pop())
        k = rng.randrange(len(live))
        out.append(live[k].pop(0))
        if not live[k]:
            live.pop(k)
    return clocked(out)


def clocked(steps: list[tuple[bytes, int]]) -> tuple[list[bytes], list[int]]:
    """Frames and their timestamps from each frame's step after the one before."""
    frames, stamps, clock = [], [], 0
    for frame, step in steps:
        clock += step
        frames.append(frame)
        stamps.append(clock)
    return frames, stamps


def smack_trains(rng: random.Random, trains: int) -> list[list[tuple[bytes, int]]]:
    """smack's trains, each a list of (frame, step from the frame before in ns)."""
    out = []
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
        steps = []
        for i, ip in enumerate(train):
            # Captures' clocks step back too: a run's spread is from its first to its latest.
            step = rng.choice([0, 1000, 1000, 40 * SECOND, -40 * SECOND]) if i else 1000
            steps.append((craft.ether(ip, 0x0800), step))
            if rng.random() < 0.1:  # a mirror port's copy
                steps.append((steps[-1][0], 0))
        out.append(steps)
    return out


def findings(
    frames: list[bytes],
    stamps: list[int],
    cuts: list[int],
    states: list[object] | None = None,
) -> list[tuple[object, ...]]:
    """The findings of the frames read in batches cut at `cuts`; `states` gets the
    trackers' open datagrams after each batch (held)."""
    checks = new_checks()
    for a, b in zip([0, *cuts], [*cuts, len(frames)], strict=True):
        batch = RecordBatch.from_packets(frames[a:b], ts_ns=stamps[a:b])
        batch.frame[:] = np.arange(a + 1, b + 1)
        observe_all(checks, decode(batch))
        if states is not None:
            states.append([held(c.open) for c in checks if hasattr(c, "open")])
    out = [(f.id, f.layer, f.count, f.packets, repr(f.evidence)) for f in collect(checks)]
    audit = next(c for c in checks if isinstance(c, fragments.FragmentAudit))
    return [*sorted(out), ("flagged", repr(sorted(audit.flagged_keys.items())))]


def held(table: Any) -> list[tuple[bytes, int, list[int]]]:
    """A tracker's open datagrams, oldest first (the order its bounds evict in): each
    one's key, first timestamp and frames."""
    out = []
    for key in table.held_keys():
        row = table.find(key.tobytes())
        obj = table.obj(row)
        dg = None if obj is None else getattr(obj, "dg", obj)
        frames = [table.lone(row).frame] if dg is None else list(dg.frames)
        out.append((key.tobytes(), int(table.ts[row]), frames))
    return out


AT_ONCE = fragments.at_once


def in_arrival(self: Any, a: int, pending: outer_reassembly.Pending, look: int) -> tuple[int, None]:
    """TunnelReassembly._stretch that gathers nothing: the rest of the batch in arrival
    order."""
    return int(pending.group.shape[0]) - a, None


def one_by_one(*args: Any, **kwargs: Any) -> list[tuple[int, int, bool]]:
    """at_once's runs, none taken at once: every fragment goes in one by one."""
    return [(a, b, False) for a, b, _ in AT_ONCE(*args, **kwargs)]


def held_then_run(proto: int) -> tuple[list[bytes], list[int], int]:
    """helper-33's case: a datagram of `proto` held without its first or last fragment,
    the oldest, then five others of 64 bytes; in the next batch, five more of its middle
    fragments (frames, timestamps, the cut)."""

    def frag(ident: int, off: int, size: int = 8) -> bytes:
        ip = craft.ipv4("192.0.2.1", D, bytes(size), proto, ident=ident, frag_off=off, flags=MF)
        return craft.ether(ip, 0x0800)

    frames = [frag(1, 8), *(frag(100 + k, 8, 64) for k in range(5))]
    cut = len(frames)
    frames += [frag(1, 16 + 8 * j) for j in range(5)]
    return frames, [0] + [1] * 5 + [2] * 5, cut


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

    def counted(*args: Any, **kwargs: Any) -> list[tuple[int, int, bool]]:
        calls.append(sum(whole for _, _, whole in AT_ONCE(*args, **kwargs)))
        return one_by_one(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(fragments, "at_once", counted)
        m.setattr(outer_reassembly, "at_once", counted)
        m.setattr(outer_reassembly.TunnelReassembly, "_stretch", in_arrival)
        alone = findings(frames, stamps, cuts)
    assert sum(calls) > 0  # runs the first pass took at once
    assert taken == alone
    if small:
        assert any(t[0] == "fragment.evicted" for t in taken)


@pytest.mark.parametrize("seed", range(24))
def test_interleaved_trains_taken_by_key_change_nothing(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FragmentSmack interleaves a few datagrams' fragments. The outer reassembly takes a
    key's fragments of a batch together where that changes nothing (_stretch), and both
    trackers take a run into a held datagram at once (_extend, FragmentAudit._continues):
    the findings, and the datagrams held after each batch, are those of every fragment
    one by one in arrival order. Odd seeds make the outer reassembly's byte bound small,
    so that some batches stay in arrival order and evict."""
    rng = random.Random(seed)
    frames, stamps = interleaved(rng, 60)
    cuts = sorted(rng.sample(range(1, len(frames)), 40))
    if seed % 2:
        monkeypatch.setattr(outer_reassembly, "MAX_BYTES", 6000)
    shortcuts_change_nothing(frames, stamps, cuts, monkeypatch)


def test_a_smack_train_over_batches_goes_in_by_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two FragmentSmack datagrams of UDP fragments (their first never comes), interleaved
    over three batches: in the second and third each key's fragments are gathered into one
    run (_stretch) and go into its held datagram at once in both trackers."""
    frames = [
        craft.ether(
            craft.ipv4(
                "192.0.2.1", D, bytes(8), 17, ident=A + k % 2, frag_off=8 * (1 + k), flags=MF
            ),
            0x0800,
        )
        for k in range(60)
    ]
    taken = shortcuts_change_nothing(frames, [1000 * k for k in range(60)], [20, 40], monkeypatch)
    assert taken == {"gathered": [True, True, True], "continued": [True] * 4}


@pytest.mark.parametrize("bound", ["bytes", "count"])
def test_a_batch_past_a_bound_goes_in_by_stretches(
    bound: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One batch of interleaved IP-in-IP trains (a tunnel's: what a bound evicts is
    reported) that overflows the outer reassembly's bound: taken in stretches between the
    evictions (_stretch), each gathering its keys' fragments, with the evictions, findings
    and datagrams held of arrival order. Bytes: two trains of 200 8-byte fragments (168
    bytes each with FRAG_COST) under a 20 kB bound: 119 fragments fit, so the 120th
    evicts the oldest (A of 60, at fragment 120; B of 90 at 180; A of 75 at 270; B of 75
    at 345; 55 more fit): 4. Count: A and B, then C and D, then E and F, 100 fragments a
    pair, under a bound of 3 open: D evicts A, E B, and F C: 3."""
    if bound == "bytes":
        monkeypatch.setattr(outer_reassembly, "MAX_BYTES", 20_000)
        idents = [A + k % 2 for k in range(400)]
    else:
        monkeypatch.setattr(outer_reassembly, "MAX_OPEN", 3)
        idents = [A + 2 * (k // 100) + k % 2 for k in range(300)]
    frames = [ipip(ident, 8 * (1 + k)) for k, ident in enumerate(idents)]
    stamps = [1000 * k for k in range(len(frames))]
    did = shortcuts_change_nothing(frames, stamps, [], monkeypatch)
    assert did["gathered"].count(True) >= 3
    (evicted,) = [f for f in findings(frames, stamps, []) if f[0] == "tunnel.reassembly_bounded"]
    assert evicted[2] == {"bytes": 4, "count": 3}[bound]


def test_keys_that_do_not_recur_are_not_gathered(monkeypatch: pytest.MonkeyPatch) -> None:
    """helper-47's flood: the outer reassembly's table full (MAX_OPEN 64 here) of IP-in-IP
    datagrams that never complete, 32 fragments of distinct held keys, then a new key that
    evicts the oldest, over and over. Gathering saves no run there, so no stretch is
    taken gathered (each look costs about ten fragments' work: looking at every new key
    made this 2.7 times slower than arrival order), and what is held is arrival order's."""
    monkeypatch.setattr(outer_reassembly, "MAX_OPEN", 64)
    idents, held, turn = [], list(range(64)), 0
    for k in range(1200):
        if k % 33 == 32:
            held = [*held[1:], 1000 + k]
            idents.append(held[-1])
        else:
            turn = (turn + 1) % len(held)
            idents.append(held[turn])
    frames = [ipip(ident, 8 * (1 + k)) for k, ident in enumerate(idents)]
    first = [ipip(ident, 8) for ident in range(64)]  # fill the table in a batch before
    did = shortcuts_change_nothing(
        first + frames, [1000 * k for k in range(64 + len(frames))], [64], monkeypatch, 16
    )
    assert did["gathered"] and not any(did["gathered"])
    # Looks get rarer while none pays (up to MAX_STEP fragments between them): 13 here, where
    # one after every eviction is 74.
    assert len(did["gathered"]) <= 20


def shortcuts_change_nothing(
    frames: list[bytes],
    stamps: list[int],
    cuts: list[int],
    monkeypatch: pytest.MonkeyPatch,
    min_gain: int = 1,
) -> dict[str, list[bool]]:
    """Whether the shortcuts leave the findings and the trackers' datagrams after each batch
    as every fragment one by one in arrival order leaves them (an assertion fails where
    not); what they did: each _stretch (whether it moved a fragment) and each
    _continues. `min_gain` 1: a stretch is gathered wherever that saves a run, so that
    small cases test its conditions."""
    monkeypatch.setattr(outer_reassembly, "MIN_GAIN", min_gain)
    did: dict[str, list[bool]] = {"gathered": [], "continued": []}
    stretch = outer_reassembly.TunnelReassembly._stretch
    cont = fragments.FragmentAudit._continues

    def spy_gather(self: Any, *args: Any, **kwargs: Any) -> Any:
        m, order = stretch(self, *args, **kwargs)
        did["gathered"].append(order is not None and bool((np.diff(order) != 1).any()))
        return m, order

    def spy_continues(self: Any, *args: Any) -> bool:
        did["continued"].append(cont(self, *args))
        return did["continued"][-1]

    with monkeypatch.context() as m:
        m.setattr(outer_reassembly.TunnelReassembly, "_stretch", spy_gather)
        m.setattr(fragments.FragmentAudit, "_continues", spy_continues)
        states: list[object] = []
        taken = findings(frames, stamps, cuts, states)
    with monkeypatch.context() as m:
        m.setattr(fragments, "at_once", one_by_one)
        m.setattr(outer_reassembly, "at_once", one_by_one)
        m.setattr(outer_reassembly.TunnelReassembly, "_stretch", in_arrival)
        arrival: list[object] = []
        alone = findings(frames, stamps, cuts, arrival)
    assert taken == alone
    assert states == arrival  # the same datagrams, in the same age
    return did


def ipip(ident: int, off: int, *, last: bool = False) -> bytes:
    """An 8-byte fragment of an IP-in-IP datagram (a tunnel's: the outer reassembly
    holds it), of key (192.0.2.1, D, 4, ident)."""
    ip = craft.ipv4("192.0.2.1", D, bytes(8), 4, ident=ident, frag_off=off, flags=0 if last else MF)
    return craft.ether(ip, 0x0800)


def udp(ident: int, offsets: list[int]) -> list[bytes]:
    """8-byte fragments of a UDP datagram between ports 1234 and 5678 (no tunnel's), of
    key (192.0.2.1, D, 17, ident), at `offsets`."""
    dgram = craft.udp("192.0.2.1", D, 1234, 5678, bytes(24))
    parts = craft.fragment_ipv4("192.0.2.1", D, dgram, 17, sizes=[8] * 4, ident=ident)
    return [craft.ether(parts[off // 8], 0x0800) for off in offsets]


def lone_udp(ident: int) -> bytes:
    """A middle fragment of a UDP datagram, alone: the outer reassembly admits it before
    the batch's other fragments, waiting for its ports (_admit)."""
    ip = craft.ipv4("192.0.2.1", D, bytes(8), 17, ident=ident, frag_off=8, flags=MF)
    return craft.ether(ip, 0x0800)


A, B, C = 1, 2, 3  # datagram ids
# Where taking a key's fragments together would change the outer reassembly's datagrams
# or their age: (frames, their timestamps in seconds, cuts).
ORDER_MATTERS = {
    # A, held without its first fragment, gets it here, completes and opens again
    # after B and C opened.
    "first here": (
        [ipip(A, 8), ipip(A, 0), ipip(B, 8), ipip(A, 16, last=True), ipip(C, 8), ipip(A, 8)],
        [0] * 6,
        [1],
    ),
    # A, held with its first fragment, completes here and opens again after B and C.
    "held head": (
        [ipip(A, 0), ipip(A, 8), ipip(B, 8), ipip(A, 16, last=True), ipip(C, 8), ipip(A, 8)],
        [0] * 6,
        [1],
    ),
    # A, held, expires 30 s after it began, at its last fragment here, after C opened.
    "late": ([ipip(A, 8), ipip(A, 16), ipip(C, 8), ipip(A, 24)], [0, 20, 25, 35], [1]),
    # A UDP datagram's first fragment shows no tunnel's port: it is not the outer
    # reassembly's to hold, its later fragment either (taken with it, that one would
    # open it again before B).
    "dropped": ([*udp(A, [8, 0]), ipip(B, 8), ipip(C, 8), *udp(A, [16])], [0] * 5, []),
    # A third datagram evicts A (MAX_OPEN 2), which then opens again and evicts B.
    "count": ([ipip(A, 8), ipip(B, 8), ipip(C, 8), ipip(A, 16)], [0] * 4, []),
    # A lone UDP fragment is admitted first and evicts A, held (MAX_OPEN 2): A opens again
    # here, a datagram more than those held before the batch (helper-42).
    "evicted first": (
        [ipip(A, 8), ipip(B, 8), lone_udp(C), ipip(B, 16), ipip(A, 16), ipip(B, 24)],
        [0] * 6,
        [2],
    ),
}


@pytest.mark.parametrize("case", sorted(ORDER_MATTERS))
def test_a_key_whose_order_matters_stays_in_arrival_order(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, seconds, cuts = ORDER_MATTERS[case]
    stamps = [SECOND * s for s in seconds]
    # These few fragments save fewer than MIN_GAIN runs: with 1, a look gathers wherever it
    # saves one, so that each case tests the condition it names.
    monkeypatch.setattr(outer_reassembly, "MIN_GAIN", 1)
    if case in {"count", "evicted first"}:
        monkeypatch.setattr(outer_reassembly, "MAX_OPEN", 2)
    states: list[object] = []
    taken = findings(frames, stamps, cuts, states)
    monkeypatch.setattr(outer_reassembly.TunnelReassembly, "_stretch", in_arrival)
    arrival: list[object] = []
    alone = findings(frames, stamps, cuts, arrival)
    assert taken == alone
    assert states == arrival
    outer = [cast(list[Any], state)[-1] for state in arrival]  # the outer reassembly's
    ids = [int(np.frombuffer(k, dtype=fragments.KEY)["ident"][0]) for k, _, _ in outer[-1]]
    assert (
        ids
        == {
            "first here": [B, C, A],
            "held head": [B, C, A],
            "late": [C, A],
            "dropped": [B, C],
            "count": [C, A],
            "evicted first": [A, B],
        }[case]
    )


@pytest.mark.parametrize("seed", range(300))
def test_extend_leaves_what_add_leaves(seed: int) -> None:
    r = random.Random(seed)

    def some(n: int, slots: int = 40) -> list[tuple[Fragment, int]]:
        out = []
        for _ in range(n):
            off, size = 8 * r.randrange(slots), r.choice([0, 8, 16, 24, 40])
            end = off + r.choice([size, size, 0])
            out.append((Fragment(off, bytes(size), r.random() < 0.8, r.randrange(99)), end))
        return out

    one, bulk = (fragments.Datagram(b"k", "outer", 4, 0) for _ in range(2))
    # What the datagram held already, and the run: a few into many are inserted one by
    # one (SWEEP_FEWER), the others swept together (many of both, as a smack run).
    held, run = (some(r.randrange(4)), some(r.randrange(30)))
    if seed % 3 == 1:
        held, run = some(r.randrange(40, 120), 2000), some(r.randrange(1, 4), 2000)
    elif seed % 3 == 2:
        held, run = some(r.randrange(0, 150), 400), some(r.randrange(130, 300), 400)
    for frag, end in held:
        one.add(frag, end)
        bulk.add(frag, end)
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
    frames, stamps, cut = held_then_run(4)
    monkeypatch.setattr(outer_reassembly, "MAX_BYTES", 1400)
    taken = findings(frames, stamps, [cut])
    monkeypatch.setattr(outer_reassembly, "at_once", one_by_one)
    alone = findings(frames, stamps, [cut])
    assert taken == alone
    (bounded,) = [f for f in alone if f[0] == "tunnel.reassembly_bounded"]
    assert bounded[2] == 3  # the held one, then two more as the run's new datagram grew


def test_a_run_into_a_held_datagram_the_audit_must_evict_goes_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fragment audit's side of helper-33's case: a datagram held without its last
    fragment, the oldest, then five others; in the next batch, five more of its middle
    fragments, whose bytes take the table over its bound. One by one, the bound evicts
    the held one midway and the rest of the run opens it again; taken at once
    (FragmentAudit._continues), it would have stayed whole and nothing been evicted."""
    frames, stamps, cut = held_then_run(6)
    bounds = dict(fragments.FragmentAudit.__init__.__kwdefaults__ or {})
    bounds.update(max_bytes=1400)
    monkeypatch.setattr(fragments.FragmentAudit.__init__, "__kwdefaults__", bounds)
    taken = findings(frames, stamps, [cut])
    monkeypatch.setattr(fragments, "at_once", one_by_one)
    alone = findings(frames, stamps, [cut])
    assert taken == alone
    (evicted,) = [f for f in alone if f[0] == "fragment.evicted"]
    # The held one with the run's first fragment, then the two oldest others as the rest
    # of the run opened it again and grew.
    assert evicted[3] == (1, 2, 3, 7)
