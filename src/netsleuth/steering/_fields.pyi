from typing import Any

from numpy.typing import NDArray

def fields(
    outer: tuple[NDArray[Any], ...],
    inner: tuple[NDArray[Any], ...],
    mask: NDArray[Any],
    out: tuple[NDArray[Any], ...],
    /,
) -> None: ...
