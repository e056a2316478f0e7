"""The fragment audit's one-pass walk over a batch's trains (checks/_trains.c): datagrams
that overlap, repeat or disagree settle in the batch that completes them, with the verdicts
the tracker reaches fragment by fragment.

The tracker is the reference: fed one fragment a batch, no key ever has two fragments in a
batch, so every fragment goes through it (Datagram, _finish, reassembly.policy_groups, the
latter checked against Sturges/Novak in test_reassembly.py). The same fragments in one batch
go through the walk; every finding, its frames and evidence, and the flagged keys must be
the same. Known answers for the common shapes come from the policies' definitions."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace

import numpy as np
import pytest

from netsleuth import craft, reassembly
from netsleuth.capture import RecordBatch
from netsleuth.checks import _trains
from netsleuth.checks.fragments import RULES, FragmentAudit
from netsleuth.craft.l3 import MF
from netsleuth.decode import decode
from netsleuth.reassembly import rule_table
from tests.fragutil import interleave

S, D = "192.0.2.1", "198.51.100.7"
Frame = tuple[bytes, int]  # (frame, wire length)


def v4(payload: bytes, off: int, more: bool, ident: int, *, src: str = S) -> bytes:
    ip = craft.ipv4(src, D, payload, 17, ident=ident, frag_off=off, flags=MF if more else 0)
    return craft.ether(ip, 0x0800)


def v6(payload: bytes, off: int, more: bool, ident: int) -> bytes:
    body = craft.ipv6_frag(payload, 17, offset=off, more=more, ident=ident)
    return craft.ether(craft.ipv6("2001:db8::1", "2001:db8::2", body, 44), 0x86DD)


Found = tuple[str, str | None, int, tuple[int, ...], str]


def audit(frames: list[Frame], *, one_by_one: bool) -> tuple[list[Found], dict[str, set[bytes]]]:
    """(findings as comparable tuples, flagged keys) after the audit saw `frames` in one
    batch, or one fragment a batch (the tracker alone)."""
    a = FragmentAudit()
    data, wire = [f for f, _ in frames], [w for _, w in frames]
    if one_by_one:
        for i, (f, w) in enumerate(frames):
            b = RecordBatch.from_packets([f], wirelen=[w])
            a.observe(decode(replace(b, frame=np.array([i + 1], dtype=np.int64))))
    else:
        a.observe(decode(RecordBatch.from_packets(data, wirelen=wire)))
    got = sorted((f.id, f.layer, f.count, f.packets, repr(f.evidence)) for f in a.findings())
    return got, a.flagged_keys


def random_trains(rng: random.Random) -> list[Frame]:
    """Trains of IPv4 and IPv6 fragments, interleaved: whole, duplicated, overlapping with
    the same or other bytes, left with holes, longer than the walk takes (16), cut by the
    snap length; a few ids, so keys recur within the batch."""
    trains: list[list[Frame]] = []
    for _ in range(rng.randint(1, 40)):
        ident = rng.randrange(4)
        build = v4 if rng.random() < 0.75 else v6
        blocks = rng.randint(1, 12)
        total = 8 * blocks
        frags: list[Frame] = []
        pieces = rng.choice([2, 3, 4, 6, 20])
        for _ in range(pieces):
            off = 8 * rng.randrange(blocks)
            size = rng.choice([0, 8, 16, 24, total - off, total - off])
            size = min(size, total - off) if rng.random() < 0.9 else size
            fill = rng.choice([b"a", b"b", b"c"])
            more = off + size < total or rng.random() < 0.1
            frame = build(fill * size, off, more, ident)
            wire = len(frame)
            if rng.random() < 0.05:  # cut by the snap length
                frame = frame[: rng.randint(34 if build is v4 else 62, len(frame))]
            frags.append((frame, wire))
            if rng.random() < 0.2:
                frags.append(frags[-1])  # a mirror port's copy
        trains.append(frags)
    return interleave(trains, rng)


@pytest.mark.parametrize("seed", range(150))
def test_the_walk_settles_as_the_tracker_decides(seed: int) -> None:
    frames = random_trains(random.Random(seed))
    assert audit(frames, one_by_one=False) == audit(frames, one_by_one=True)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def counts(frames: list[bytes]) -> dict[str, int]:
    a = FragmentAudit()
    a.observe(decode(RecordBatch.from_packets(frames)))
    return {f"{f.id}/{f.layer}": f.count for f in a.findings()}


def test_teardrop_pair_conflicts_with_the_policies_payloads() -> None:
    """24 bytes of 'a' at 0, then 24 of 'b' at 8: the new fragment wins the 16 bytes they
    share under last (always) and bsd-right (it reaches further right), loses under first,
    bsd and linux-legacy (it starts later), windows and solaris (it does not cover the old
    one); linux discards the datagram."""
    frames = [v4(b"a" * 24, 0, True, 9), v4(b"b" * 24, 8, False, 9)]
    a = FragmentAudit()
    a.observe(decode(RecordBatch.from_packets(frames)))
    assert not a.open  # settled in the batch
    got = {f.id: f for f in a.findings()}
    assert set(got) == {"ipv4.fragment.overlap", "ipv4.fragment.overlap_conflict"}
    (entry,) = got["ipv4.fragment.overlap_conflict"].evidence["datagrams"]
    assert entry == {
        "frames": [1, 2],
        "policies": [
            {
                "policies": ["first", "bsd", "linux-legacy", "windows", "solaris"],
                "sha_prefix": digest(b"a" * 24 + b"b" * 8),
            },
            {"policies": ["last", "bsd-right"], "sha_prefix": digest(b"a" * 8 + b"b" * 24)},
            {"policies": ["linux"], "result": "discarded"},
        ],
    }


def test_mirror_copies_are_duplicates_and_agreeing_overlaps_no_conflict() -> None:
    first, last = v4(b"x" * 16, 0, True, 3), v4(b"y" * 8, 16, False, 3)
    # The datagram is complete at the first copy of its last fragment; the second copy
    # opens a new one, which a reassembler holds until it times out.
    assert counts([first, first, last, last]) == {
        "ipv4.fragment.duplicate/outer": 3,
        "ipv4.fragment.incomplete/outer": 1,
    }
    # The same bytes where they overlap: every policy builds the same payload.
    same = [v4(b"q" * 16, 0, True, 4), v4(b"q" * 16, 8, False, 4)]
    assert counts(same) == {"ipv4.fragment.overlap/outer": 2}
    # IPv6: overlaps are reported (RFC 5722), exact copies are not.
    six = [v6(b"r" * 16, 0, True, 5), v6(b"s" * 16, 8, False, 5)]
    assert counts(six) == {"ipv6.fragment.overlap/outer": 2}
    copies = [v6(b"r" * 16, 0, True, 6), v6(b"r" * 16, 0, True, 6), v6(b"t" * 8, 16, False, 6)]
    assert counts(copies) == {}


def test_a_recurring_id_opens_a_new_datagram_after_completion() -> None:
    """The second train reuses the id once the first is complete: two clean datagrams,
    then one that overlaps; only the third is reported."""
    clean = [v4(b"a" * 8, 0, True, 1), v4(b"b" * 8, 8, False, 1)]
    bad = [v4(b"c" * 16, 0, True, 1), v4(b"d" * 16, 8, False, 1)]
    a = FragmentAudit()
    a.observe(decode(RecordBatch.from_packets(clean + clean + bad)))
    got = {f.id: f.packets for f in a.findings()}
    assert got == {"ipv4.fragment.overlap": (5, 6), "ipv4.fragment.overlap_conflict": (5, 6)}


def test_the_walk_refuses_bytes_outside_the_buffer() -> None:
    one = np.ones(1, dtype=np.uint8)
    i64 = np.zeros(1, dtype=np.int64)
    buf = np.zeros(16, dtype=np.uint8)
    iid, flags = np.empty(1, np.int64), np.empty(1, np.uint8)
    past = np.array([12], dtype=np.int64)
    size = np.array([8], dtype=np.int64)
    with pytest.raises(ValueError, match="outside the buffer"):
        _trains.trains(one, one, i64, size, past, size, i64, 30, buf, RULES, iid, flags)
    with pytest.raises(ValueError, match="sizes do not match"):
        _trains.trains(
            one, one, np.zeros(2, np.int64), size, i64, size, i64, 30, buf, RULES, iid, flags
        )
    assert _trains.trains(one, one, i64, size, i64, size, i64, 30, buf, RULES, iid, flags) == 1
    assert flags[0] == 1  # complete, nothing else


def test_the_rule_table_reads_each_policy_from_its_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit 3 * (new offset <, =, > old offset) + (new end <, =, > old end); the policies as
    reassembly.py describes them: first never overwrites, last always, bsd when the new
    fragment starts before, bsd-right when it ends after, linux-legacy unless it starts
    after, windows when it starts before and ends after, solaris the same or ends with."""
    starts_before, ends_after = 0b000_000_111, 0b100_100_100
    assert rule_table() == [
        0,
        0b111_111_111,
        starts_before,
        ends_after,
        0b000_111_111,
        starts_before & ends_after,
        starts_before & 0b110_110_110,
    ]
    odd = {**reassembly.POLICIES, "odd": lambda new, old: new.offset % 16 == 0}
    monkeypatch.setattr(reassembly, "POLICIES", odd)
    with pytest.raises(ValueError, match="more than offsets and ends"):
        rule_table()


def test_outputs_may_not_alias_inputs() -> None:
    one = np.ones(1, dtype=np.uint8)
    col = np.zeros(1, dtype=np.int64)
    flags = np.empty(1, np.uint8)
    buf = np.zeros(16, dtype=np.uint8)
    with pytest.raises(ValueError, match="share memory"):
        _trains.trains(one, one, col, col, col, col, col, 30, buf, RULES, col, flags)


def test_a_fragment_shorter_than_its_header_is_not_reassembled() -> None:
    """Total length 12 at offset 8: its end would be 0, as if it ended a datagram of its
    own. IP drops it before reassembly (a header error): it is zero_length, and the train
    around it is one clean datagram, in one batch or fragment by fragment."""
    runt = craft.ether(craft.ipv4(S, D, b"", 17, ident=1, frag_off=8, total_length=12), 0x0800)
    frames = [(f, len(f)) for f in (runt, v4(b"x" * 8, 0, True, 1), v4(b"y" * 8, 8, False, 1))]
    got = audit(frames, one_by_one=False)
    assert got == audit(frames, one_by_one=True)
    assert [(f[0], f[3]) for f in got[0]] == [("ipv4.fragment.zero_length", (1,))]
