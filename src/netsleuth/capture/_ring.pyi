import numpy as np
from _typeshed import WriteableBuffer
from numpy.typing import NDArray

def block_info(ring: WriteableBuffer, off: int, /) -> tuple[int, int, int]: ...
def release_block(ring: WriteableBuffer, off: int, /) -> None: ...
def walk_block(
    ring: WriteableBuffer,
    off: int,
    block_size: int,
    buf: NDArray[np.uint8],
    pos: int,
    index: int,
    offset: NDArray[np.int64],
    caplen: NDArray[np.int64],
    wirelen: NDArray[np.int64],
    ts_ns: NDArray[np.int64],
    pkttype: NDArray[np.int64],
    ethernet: bool,
    /,
) -> tuple[int, int]: ...
