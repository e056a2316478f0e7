from typing import Any

from numpy.typing import NDArray

def mix64(rows: NDArray[Any], width: int, seed: int, out: NDArray[Any], /) -> None: ...
