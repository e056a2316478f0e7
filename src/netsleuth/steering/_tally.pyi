from typing import Any

from numpy.typing import NDArray

def tally(
    keys: NDArray[Any],
    sizes: NDArray[Any],
    slots: NDArray[Any],
    rec_key: NDArray[Any],
    rec_packets: NDArray[Any],
    rec_bytes: NDArray[Any],
    count: int,
    new_rows: NDArray[Any],
    /,
) -> int: ...
def reslot(rec_key: NDArray[Any], count: int, slots: NDArray[Any], /) -> None: ...
