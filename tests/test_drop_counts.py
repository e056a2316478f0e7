"""The capture statistics kept per (section, interface) (capture/chunks.py: DropCounts):
bounded, and the same set and values whatever order the keys come in and however an
input is cut into parts joined in order."""

from __future__ import annotations

import random

import pytest

from netsleuth.capture import chunks
from netsleuth.capture.chunks import DropCounts


def statistics(n: int) -> list[tuple[tuple[int, int], tuple[int, int, int]]]:
    """`n` statistics blocks in file order: sections ascend, interfaces come in any order,
    each block's drops a running total (later blocks of a key count more)."""
    rng = random.Random(7)
    out = []
    for k in range(n):
        key = (1 + k // 40, rng.randrange(60))
        out.append((key, (k, k + 1, 100 * k)))
    return out


def one(blocks: list[tuple[tuple[int, int], tuple[int, int, int]]]) -> DropCounts:
    d = DropCounts()
    for key, value in blocks:
        d.put(key, value)
    return d


@pytest.mark.parametrize("cuts", [[], [50], [13, 77, 150], list(range(10, 200, 10))])
def test_parts_joined_in_order_keep_what_one_reader_keeps(
    cuts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunks, "MAX_DROP_KEYS", 25)
    blocks = statistics(200)
    whole = one(blocks)
    assert whole.bounded and len(whole.items) == 25
    # the 25 smallest keys, each with its latest block's values
    want = sorted({k for k, _ in blocks})[:25]
    assert sorted(whole.items) == want
    assert all(whole.items[k] == [v for kk, v in blocks if kk == k][-1] for k in want)
    joined, frames = DropCounts(), 0
    for lo, hi in zip([0, *cuts], [*cuts, len(blocks)], strict=True):
        part = one([(k, (n, f - frames, o)) for k, (n, f, o) in blocks[lo:hi]])
        joined.merge(part, frames)
        frames = blocks[hi - 1][1][1]
    assert joined.items == whole.items and joined.bounded


def test_under_the_bound_nothing_is_left_out() -> None:
    blocks = statistics(30)
    d = one(blocks)
    assert not d.bounded and set(d.items) == {k for k, _ in blocks}
