"""Overlap policies against the Sturges/Novak test pattern (Novak, "Target-Based
Fragmentation Reassembly", 2005; expected results as given in the scan issue)."""

from __future__ import annotations

import pytest

from netsleuth.reassembly import Fragment, overlaps, policy_groups, reassemble
from tests.fragutil import PATTERN

EXPECTED = {
    "bsd": "AAAJJBCCCLLLMMMFFFGGHHIQ",
    "linux-legacy": "AAAJJBKKKLLLMMMFFFGGPHQQ",
    "windows": "AAAJBBCCCLLLMEEFFFGGHHIQ",
    "solaris": "AAAJBBCCCLLLMMMFFFGGHHIQ",
    "first": "AAAJBBCCCLDLMEEFFFGGHHIQ",
    "last": "AJJJJBKKKLLLMMMFNFGOPHQQ",
}


def sturges_novak() -> list[Fragment]:
    return [
        Fragment(off, letter.encode() * n, letter != "Q", i + 1)
        for i, (letter, n, off) in enumerate(PATTERN)
    ]


@pytest.mark.parametrize(("policy", "blocks"), sorted(EXPECTED.items()))
def test_sturges_novak(policy: str, blocks: str) -> None:
    data = reassemble(sturges_novak(), policy)
    assert data is not None and len(data) == 192
    assert data[::8].decode() == blocks
    assert data == b"".join(c.encode() * 8 for c in blocks)  # whole blocks, no mixing


def test_modern_linux_discards_overlapping_datagrams() -> None:
    assert reassemble(sturges_novak(), "linux") is None
    clean = [Fragment(0, b"a" * 16, True), Fragment(16, b"b" * 8, False)]
    assert not overlaps(clean)
    assert reassemble(clean, "linux") == b"a" * 16 + b"b" * 8


def test_policy_groups_show_the_disagreement() -> None:
    groups = {tuple(names) for names, _ in policy_groups(sturges_novak())}
    assert ("linux",) in groups
    assert len(groups) == 8  # every policy disagrees with every other one on this pattern
    same = [Fragment(0, b"x" * 16, True), Fragment(8, b"x" * 16, False)]  # identical bytes
    names = [n for n, data in policy_groups(same) if data is not None]
    assert len(names) == 1 and "first" in names[0] and "windows" in names[0]


def test_zero_length_fragment_adds_nothing() -> None:
    # DPDK commit 7f0983ee331c's sequence: overlap plus a zero-length fragment.
    frags = [
        Fragment(0, b"a" * 100, True),
        Fragment(96, b"b" * 100, True),
        Fragment(200, b"", True),
        Fragment(200, b"c" * 100, False),
    ]
    assert overlaps(frags)
    data = reassemble(frags, "first")
    assert data is not None and len(data) == 300 and data[96:100] == b"aaaa"
