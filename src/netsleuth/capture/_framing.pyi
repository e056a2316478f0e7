from _typeshed import ReadableBuffer, WriteableBuffer

def walk_pcap(
    buf: ReadableBuffer,
    start: int,
    end: int,
    swapped: bool,
    max_caplen: int,
    frac_scale: int,
    out: WriteableBuffer,
    hdr: int,
    at: int,
    /,
) -> tuple[int, int, int]: ...
def walk_pcapng(
    buf: ReadableBuffer,
    start: int,
    end: int,
    swapped: bool,
    max_block: int,
    out: WriteableBuffer,
    at: int,
    /,
) -> tuple[int, int, int, bool]: ...
def walk_erf(
    buf: ReadableBuffer,
    start: int,
    end: int,
    out: WriteableBuffer,
    at: int,
    /,
) -> tuple[int, int, int]: ...
