from typing import Any

from numpy.typing import NDArray

def mix64(columns: tuple[NDArray[Any], ...], seed: int, out: NDArray[Any], /) -> None: ...
