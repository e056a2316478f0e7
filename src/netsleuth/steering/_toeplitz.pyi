from typing import Any

from numpy.typing import NDArray

def toeplitz_fields(
    tables: NDArray[Any], columns: tuple[NDArray[Any], ...], out: NDArray[Any], /
) -> None: ...
