from typing import Any

from numpy.typing import NDArray

def trains(
    first: NDArray[Any],
    last: NDArray[Any],
    off: NDArray[Any],
    end: NDArray[Any],
    data: NDArray[Any],
    size: NDArray[Any],
    ts: NDArray[Any],
    timeout: int,
    buf: NDArray[Any],
    rules: NDArray[Any],
    iid: NDArray[Any],
    flags: NDArray[Any],
    /,
) -> int: ...
def gather(
    src: NDArray[Any], start: NDArray[Any], count: NDArray[Any], out: NDArray[Any], /
) -> int: ...
def hashes(keys: NDArray[Any], width: int, mix: NDArray[Any], out: NDArray[Any], /) -> int: ...
def differ(keys: NDArray[Any], width: int, a: NDArray[Any], b: NDArray[Any], /) -> int: ...
def pack(
    rows: NDArray[Any],
    columns: tuple[NDArray[Any], ...],
    inner: bool,
    at: NDArray[Any],
    width: int,
    mix: NDArray[Any],
    keys: NDArray[Any],
    out: NDArray[Any],
    /,
) -> int: ...
