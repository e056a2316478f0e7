from _typeshed import ReadableBuffer, WriteableBuffer

def walk(
    buf: ReadableBuffer,
    page_size: int,
    commit_off: int,
    commit_size: int,
    data_off: int,
    out: WriteableBuffer,
    /,
) -> tuple[int, int, int]: ...
