from typing import Any

from numpy.typing import NDArray

def tally(
    keys: NDArray[Any],
    sizes: NDArray[Any] | None,
    slots: NDArray[Any],
    count: int,
    rec_packets: NDArray[Any] | None,
    rec_bytes: NDArray[Any] | None,
    new_rows: NDArray[Any],
    /,
) -> int: ...
def reslot(old: NDArray[Any], new: NDArray[Any], /) -> None: ...
