"""Array helpers the hot path shares."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

T = TypeVar("T", bound=np.generic)


def distinct(a: NDArray[T]) -> NDArray[T]:
    """The sorted distinct values of a 1-D array, as `np.unique(a)`. Not np.unique itself:
    from NumPy 2.3 its call without return_index/inverse/counts asks np.ma.is_masked
    (numpy/lib/_arraysetops_impl.py, _unique1d), which imports numpy.ma on first use:
    20 ms of start-up in every process (measured on NumPy 2.4.6, -X importtime), each
    worker of `--workers N` included."""
    s = np.sort(a)
    keep = np.ones(s.shape[0], dtype=np.bool_)
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def member(a: NDArray[np.integer[Any]], b: ArrayLike) -> NDArray[np.bool_]:
    """Whether each element of the integer array `a` is in `b`, as `np.isin(a, b)`. Not
    np.isin itself where `b` is data, not a small constant: when its values spread wide
    (row indices, frame numbers), _isin takes its sort path, which calls np.unique(b)
    and so imports numpy.ma (distinct)."""
    s = distinct(np.asarray(b, dtype=np.int64).ravel())
    if s.shape[0] == 0:
        return np.zeros(a.shape, dtype=np.bool_)
    at = np.minimum(np.searchsorted(s, a), s.shape[0] - 1)
    return np.asarray(s[at] == a)
