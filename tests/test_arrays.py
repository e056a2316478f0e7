"""netsleuth.arrays against NumPy's own functions as the oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from netsleuth.arrays import distinct, member


@given(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=200))
def test_distinct_is_np_unique(values: list[int]) -> None:
    a = np.array(values, dtype=np.int64)
    got = distinct(a)
    assert got.dtype == np.int64
    assert got.tolist() == np.unique(a).tolist()


def test_distinct_keeps_the_dtype_and_handles_empty() -> None:
    assert distinct(np.array([3, 1, 3, 2, 1], dtype=np.uint16)).tolist() == [1, 2, 3]
    assert distinct(np.array([3, 1], dtype=np.uint16)).dtype == np.uint16
    assert distinct(np.zeros(0, dtype=np.int32)).shape == (0,)


@given(
    st.lists(st.integers(-(1 << 40), 1 << 40), max_size=100),
    st.lists(st.integers(-(1 << 40), 1 << 40), max_size=100),
)
def test_member_is_np_isin(values: list[int], among: list[int]) -> None:
    a = np.array(values, dtype=np.int64)
    assert member(a, among).tolist() == np.isin(a, np.array(among, dtype=np.int64)).tolist()


def test_member_of_nothing_and_of_a_wide_spread() -> None:
    a = np.array([0, 5, 10_000, 200_000], dtype=np.int64)
    assert member(a, []).tolist() == [False] * 4
    assert member(a, np.arange(0, 200_001, 10_000)).tolist() == [True, False, True, True]
