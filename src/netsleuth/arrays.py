"""Array helpers the hot path shares."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

T = TypeVar("T", bound=np.generic)


def distinct(a: NDArray[T]) -> NDArray[T]:
    """The sorted distinct values of a 1-D array, as `np.unique(a)`. Not np.unique itself:
    from NumPy 2.3 its call without return_index/inverse/counts asks np.ma.is_masked
    (numpy/lib/_arraysetops_impl.py, _unique1d), which imports numpy.ma on first use:
    20 ms of start-up in every process (measured on NumPy 2.4.6, -X importtime), each
    worker of `--workers N` included."""
    s = np.sort(a, kind="stable")
    keep = np.ones(s.shape[0], dtype=np.bool_)
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]
