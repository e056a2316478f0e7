from typing import TypedDict

from _typeshed import ReadableBuffer, WriteableBuffer

class Layout(TypedDict):
    offsets: dict[str, int]
    flags: dict[str, int]
    head: int
    tail: int
    data_offset: int

def perf_event_open(
    attr: ReadableBuffer, pid: int, cpu: int, group_fd: int, flags: int, /
) -> int: ...
def read_head(page: WriteableBuffer, /) -> int: ...
def write_tail(page: WriteableBuffer, tail: int, /) -> None: ...
def attr_layout() -> Layout: ...
