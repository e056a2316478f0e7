"""The fragment audit's datagram lifecycle: a datagram ends when its last hole is filled, and
the next fragment with the same key starts a new one (IP ids are 16 bits and recur).

Expected verdicts are what Linux does (net/ipv4/ip_fragment.c: ip_frag_queue completes and
frees the queue once first and last are in and every byte is there; a queue older than
ipfrag_time, 30 s, expires) and what RFC 791 section 3.2 / RFC 8200 section 4.5 describe."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.capture.writer import write_pcap
from netsleuth.checks.fragments import FragmentAudit, Frags, Instances
from netsleuth.craft.l3 import MF
from netsleuth.decode import decode

S, D = "192.0.2.1", "198.51.100.7"
SEC = 1_000_000_000


def frag(data: bytes, off: int, more: bool, *, ident: int = 7, src: str = S) -> bytes:
    ip = craft.ipv4(src, D, data, 17, ident=ident, frag_off=off, flags=MF if more else 0)
    return craft.ether(ip, 0x0800)


def datagram(payload: bytes, *, ident: int, size: int = 1480) -> list[bytes]:
    sizes = [size] * (len(payload) // size) + [len(payload) % size]
    return [
        craft.ether(f, 0x0800)
        for f in craft.fragment_ipv4(S, D, payload, 17, sizes=sizes, ident=ident)
    ]


Verdicts = dict[str, tuple[int, tuple[int, ...]]]


def audit(
    frames: list[bytes], ts: list[int] | None = None, cls: type[FragmentAudit] = FragmentAudit
) -> Verdicts:
    """finding id -> (count, frames) after one batch."""
    a = cls()
    a.observe(decode(RecordBatch.from_packets(frames, ts_ns=ts)))
    return {f.id: (f.count, tuple(sorted(f.packets))) for f in a.findings()}


def test_two_complete_datagrams_reusing_an_id_are_two_datagrams() -> None:
    one = datagram(b"A" * 3000, ident=77)
    two = datagram(b"B" * 3000, ident=77)  # same key, other bytes, 2 s later
    assert audit(one + two, ts=[0, 1, 2, 2 * SEC, 2 * SEC + 1, 2 * SEC + 2]) == {}


def test_four_complete_datagrams_with_one_id_are_complete() -> None:
    frames = [f for c in b"wxyz" for f in datagram(bytes([c]) * 5000, ident=5)]
    assert len(frames) == 16
    assert audit(frames) == {}


def test_reordered_trains_with_a_recurring_id() -> None:
    frames: list[bytes] = []
    for c in b"pq":
        frames += datagram(bytes([c]) * 3000, ident=9)[::-1]  # last fragment first
    assert audit(frames) == {}


def test_seventy_fragments_complete_is_not_incomplete() -> None:
    frames = datagram(b"s" * (70 * 64 - 8), ident=3, size=64)
    assert len(frames) == 70
    assert audit(frames) == {"ipv4.fragment.too_many": (70, tuple(range(1, 71)))}


def test_late_copy_after_completion_starts_a_new_datagram() -> None:
    # A reassembler has freed the datagram: the copy of its first fragment is a new,
    # never-completed datagram (Linux: it expires after 30 s, ReasmFails + ReasmTimeout).
    frames = datagram(b"c" * 2000, ident=4)
    got = audit([*frames, frames[0]])
    assert got == {"ipv4.fragment.incomplete": (1, (3,))}


def test_overlap_then_the_next_datagram_with_the_same_id() -> None:
    bad = [frag(b"a" * 16, 0, True), frag(b"b" * 16, 8, False)]  # overlapping, complete
    good = datagram(b"g" * 2000, ident=7)
    got = audit(bad + good)
    assert got["ipv4.fragment.overlap"] == (2, (1, 2))
    assert got["ipv4.fragment.overlap_conflict"] == (2, (1, 2))
    assert "ipv4.fragment.incomplete" not in got


def test_a_huge_fragment_does_not_hide_another_datagrams_hole() -> None:
    s6, d6 = "2001:db8::1", "2001:db8::2"
    # IPv6 payload length 0 with a megabyte behind it: the frame gives the length.
    huge = craft.ether(
        craft.ipv6(
            s6,
            d6,
            craft.ipv6_frag(b"j" * 1_200_000, 17, offset=0, more=True, ident=1),
            44,
            payload_length=0,
        ),
        0x86DD,
    )
    holed = [frag(b"h" * 16, 0, True, ident=2), frag(b"h" * 8, 24, False, ident=2)]
    got = audit([huge, *holed])
    assert got["ipv4.fragment.incomplete"] == (2, (2, 3))
    assert got["ipv6.fragment.incomplete"] == (1, (1,))


class TrackerOnly(FragmentAudit):
    """Every fragment through the fragment-by-fragment tracker (no vectorized settling)."""

    def _instances(
        self,
        inv: NDArray[np.int64],
        f: Frags,
        held: NDArray[np.bool_],
        buf: NDArray[np.uint8],
    ) -> Instances:
        n = inv.shape[0]
        return Instances(
            inst=np.arange(n, dtype=np.int64),
            flags=np.zeros(n, dtype=np.uint8),
            settled=np.zeros(n, dtype=np.bool_),
            key=inv,
            frame=f.frames,
            count=np.ones(n, dtype=np.int64),
            v4=f.v4,
        )


def random_traffic(rng: random.Random, n_dgrams: int) -> list[bytes]:
    """Datagrams from a small pool of ids (so they recur), some reordered, some missing a
    fragment, some with a duplicate, an overlap or a zero-length fragment."""
    frames: list[bytes] = []
    for _ in range(n_dgrams):
        ident = rng.randrange(6)
        size = rng.choice([8, 16, 24, 48])
        total = rng.randrange(1, 8) * size + rng.randrange(size)
        data = bytes([rng.randrange(256)]) * total
        parts = [(off, data[off : off + size], off + size < total) for off in range(0, total, size)]
        roll = rng.random()
        if roll < 0.15 and len(parts) > 1:
            parts.pop(rng.randrange(len(parts)))
        elif roll < 0.3:
            parts.append(rng.choice(parts))
        elif roll < 0.4:
            off = rng.randrange(0, total, 8)
            parts.append((off, b"o" * size, True))
        elif roll < 0.45:
            parts.append((rng.randrange(0, total + 8, 8), b"", rng.random() < 0.5))
        if rng.random() < 0.3:
            rng.shuffle(parts)
        frames += [frag(d, off, more, ident=ident) for off, d, more in parts]
    return frames


def test_vectorized_settling_agrees_with_the_tracker() -> None:
    rng = random.Random(12)
    for _ in range(150):
        frames = random_traffic(rng, rng.randrange(1, 12))
        assert audit(frames) == audit(frames, cls=TrackerOnly), frames


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reassembles_the_reused_ids_as_separate_datagrams(tmp_path: Path) -> None:
    # The independent oracle: Wireshark's reassembly completes each datagram where ours
    # does (the frame that filled the last hole), with the whole length.
    cases = {
        "two": (
            datagram(b"A" * 3000, ident=77) + datagram(b"B" * 3000, ident=77),
            {3: 3000, 6: 3000},
        ),
        "four": (
            [f for c in b"wxyz" for f in datagram(bytes([c]) * 5000, ident=5)],
            {4: 5000, 8: 5000, 12: 5000, 16: 5000},
        ),
    }
    for name, (frames, expected) in cases.items():
        path = tmp_path / f"{name}.pcap"
        with open(path, "wb") as fh:
            write_pcap(fh, [(i * SEC // 4, f) for i, f in enumerate(frames)])
        fields = ["-T", "fields", "-e", "frame.number", "-e", "ip.reassembled.length"]
        out = subprocess.run(
            ["tshark", "-o", "ip.defragment:TRUE", "-r", str(path), *fields],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        got = {
            int(n): int(length)
            for n, length in (line.split("\t")[:2] for line in out.splitlines())
            if length
        }
        assert got == expected, name
        assert audit(frames) == {}


def test_eviction_takes_the_oldest_not_this_batchs_open_datagram() -> None:
    a = FragmentAudit(max_open=4)
    lone = [frag(b"l" * 16, 0, True, ident=100 + i) for i in range(5)]
    kept = [frag(b"k" * 16, 0, True, ident=7), frag(b"k" * 16, 0, True, ident=7)]
    a.observe(decode(RecordBatch.from_packets(lone + kept, ts_ns=list(range(1, 8)))))
    a.observe(decode(RecordBatch.from_packets([frag(b"k" * 8, 16, False, ident=7)], ts_ns=[8])))
    got = {f.id: tuple(sorted(f.packets)) for f in a.findings()}
    assert got["fragment.evicted"] == (1, 2)  # the two oldest lone first fragments
    # ident 7 completed (frames 6, 7 of the first batch and 1 of the second: each
    # in-memory batch numbers its frames from 1).
    assert got["ipv4.fragment.duplicate"] == (1, 6, 7)
    assert got["ipv4.fragment.incomplete"] == (3, 4, 5)  # lone ones still open at the end


def test_a_lone_datagram_is_what_add_would_build() -> None:
    from netsleuth.checks.fragments import Datagram
    from netsleuth.reassembly import Fragment

    cases = [
        (Fragment(0, b"a" * 16, True, 3), 16),  # a first fragment
        (Fragment(24, b"b" * 8, False, 4), 32),  # a last one
        (Fragment(1400, b"", False, 5), 1400),  # zero length, last (incident 1)
        (Fragment(8, b"", True, 6), 8),  # zero length, more to come
    ]
    for frag, end in cases:
        built = Datagram(b"k", "outer", 4, 77)
        built.add(frag, end)
        assert Datagram.lone(b"k", "outer", 4, frag, end=end, ts=77) == built
