"""Ring-buffer pages of skb:kfree_skb events -> field arrays.

The C walk (sources/_ringbuf.c) finds each event's data; the fields are then gathered in
bulk at the offsets the running kernel's format file gives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from netsleuth.arrays import member
from netsleuth.drops.format import EventFormat, FormatError, PageLayout
from netsleuth.sources import _ringbuf

# Reasons that are not drops. Since SKB_CONSUMED exists (6.3) kfree_skb_reason() routes it
# to the consume_skb event and leaves it out of kfree_skb's table, and SKB_NOT_DROPPED_YET
# (0, 5.19+) is never traced; a kernel whose table lists either still gets them skipped.
NOT_DROPS = frozenset({"CONSUMED", "NOT_DROPPED_YET"})

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


@dataclass(frozen=True, slots=True)
class Layout:
    """Where skb:kfree_skb's fields sit on this kernel; `reason` is None before 5.17."""

    event_id: int
    size: int
    location: tuple[int, int]
    protocol: tuple[int, int]
    reason: tuple[int, int] | None
    reason_names: dict[int, str]

    @classmethod
    def of(cls, fmt: EventFormat) -> Layout:
        fmt.require("common_type", "location", "protocol")
        for name in ("common_type", "location", "protocol", "reason"):
            f = fmt.fields.get(name)
            if f is not None and f.size not in _UINT:
                raise FormatError(f"field {name} of {f.size} bytes")
        reason = fmt.fields.get("reason")
        return cls(
            fmt.id,
            fmt.size,
            (fmt.fields["location"].offset, fmt.fields["location"].size),
            (fmt.fields["protocol"].offset, fmt.fields["protocol"].size),
            (reason.offset, reason.size) if reason else None,
            fmt.symbols.get("reason", {}),
        )

    @property
    def not_drops(self) -> frozenset[int]:
        return frozenset(k for k, v in self.reason_names.items() if v in NOT_DROPS)


@dataclass(frozen=True, slots=True)
class Drops:
    """One read's drop events: the location address, protocol (host order: the
    tracepoint stores ntohs(skb->protocol)) and reason number (-1 when not recorded)."""

    location: npt.NDArray[np.uint64]
    protocol: npt.NDArray[np.uint16]
    reason: npt.NDArray[np.int64]
    missed: int  # events the kernel says were lost between these pages
    bad_pages: int

    def __len__(self) -> int:
        return len(self.location)


def _gather(
    buf: npt.NDArray[np.uint8], offs: npt.NDArray[np.int64], at: tuple[int, int]
) -> npt.NDArray[np.uint64]:
    off, size = at
    rows = buf[offs[:, None] + (off + np.arange(size))]
    return np.ascontiguousarray(rows).view(_UINT[size]).ravel().astype(np.uint64)


def decode(pages: bytes | bytearray | memoryview, page: PageLayout, layout: Layout) -> Drops:
    if len(pages) == 0:
        empty = np.zeros(0, np.uint64)
        return Drops(empty, np.zeros(0, np.uint16), np.zeros(0, np.int64), 0, 0)
    out = np.empty((2, len(pages) // 8 + 1), dtype=np.int64)
    n, missed, bad = _ringbuf.walk(
        pages, page.page_size, page.commit_offset, page.commit_size, page.data_offset, out.data
    )
    offs, lens = out[0, :n], out[1, :n]
    buf = np.frombuffer(pages, dtype=np.uint8)
    whole = offs[lens >= layout.size]
    ctype = _gather(buf, whole, (0, 2))
    offs = whole[ctype == layout.event_id]
    location = _gather(buf, offs, layout.location)
    protocol = _gather(buf, offs, layout.protocol).astype(np.uint16)
    if layout.reason is not None:
        reason = _gather(buf, offs, layout.reason).astype(np.int64)
        skip = layout.not_drops
        if skip:
            keep = ~member(reason, np.array(sorted(skip), dtype=np.int64))
            location, protocol, reason = location[keep], protocol[keep], reason[keep]
    else:
        reason = np.full(len(offs), -1, dtype=np.int64)
    return Drops(location, protocol, reason, int(missed), int(bad))
