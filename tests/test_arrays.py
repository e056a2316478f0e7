"""netsleuth.arrays against NumPy's own functions as the oracle."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from netsleuth.arrays import distinct


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
