from typing import Any

from numpy.typing import NDArray

def prefix(
    buf: NDArray[Any],
    columns: tuple[NDArray[Any], ...],
    flat: NDArray[Any],
    max_tunnels: int,
    max_steps: int,
    /,
) -> int: ...
