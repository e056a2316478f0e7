"""The datagrams a reassembly tracker holds, oldest first, as columns.

A flood of fragments whose datagrams never complete (each its own key: lone last
fragments, first fragments whose others were lost) opens thousands of datagrams a batch.
As Python objects, each cost ~4 us to build, hold and evict: the floor of such a scan was
0.2 M packets/s. Here a datagram of one fragment is a row of arrays and its bytes a slice
of one pool, admitted, expired and evicted a batch at a time. A datagram that grows (a
later fragment of its key came) becomes its tracker's object, attached to its row, which
keeps its place in the age order the bounds evict by: rows are appended as datagrams open,
so the oldest alive row is the oldest datagram, as in the OrderedDict this replaces.

Used by the fragment audit (fragments.FragmentAudit) and the outer reassembly
(outer_reassembly.TunnelReassembly); each charges a row what it holds (`cost`: the
fragment's bytes plus FRAG_COST for a row alone, the object's own count once attached).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from netsleuth.arrays import member
from netsleuth.checks import _trains

T = TypeVar("T")

MIN_ROWS = 1024
MIN_POOL = 1 << 20


class Lone(NamedTuple):
    """The one fragment of a row without an object."""

    ts: int  # the datagram's first timestamp (its fragment's)
    frame: int
    off: int
    end: int  # offset + its IP data length
    more: bool
    data: bytes  # what the capture holds of its data
    cut: bool  # the tracker's own flag (the outer reassembly: cut by the snap length)


@dataclass(frozen=True)
class Gone(Generic[T]):
    """Datagrams that left the table together: those of one fragment as columns (their
    keys, frames and `cut` flags, oldest first), the others as their objects (oldest
    first)."""

    keys: NDArray[np.void]
    frames: NDArray[np.int64]
    cut: NDArray[np.bool_]
    objs: list[T]

    def __len__(self) -> int:
        return int(self.keys.shape[0]) + len(self.objs)


class HeldTable(Generic[T]):
    """Open datagrams by key, oldest first, bounded by the caller (over(), evict())."""

    def __init__(self, key: np.dtype[np.void], max_open: int, max_bytes: int) -> None:
        self.max_open, self.max_bytes = max_open, max_bytes
        self.index: dict[bytes, int] = {}  # key -> row
        self.objs: dict[int, T] = {}  # row -> its tracker's object
        # row -> what its object costs: a Python int, as the slow path charges it at every
        # fragment (a NumPy scalar read and write each cost more than the rest of it).
        self.objcost: dict[int, int] = {}
        self.nbytes = 0  # what the alive rows cost
        self.head = 0  # rows before it are all gone
        self.n = 0  # rows used
        self.keys = np.zeros(0, dtype=key)
        self.ts = np.zeros(0, dtype=np.int64)
        self.frame = np.zeros(0, dtype=np.int64)
        self.off = np.zeros(0, dtype=np.int64)
        self.end = np.zeros(0, dtype=np.int64)
        self.pos = np.zeros(0, dtype=np.int64)  # its bytes in the pool (rows alone)
        self.size = np.zeros(0, dtype=np.int64)
        self.cost = np.zeros(0, dtype=np.int64)
        self.more = np.zeros(0, dtype=np.bool_)
        self.cut = np.zeros(0, dtype=np.bool_)
        self.alive = np.zeros(0, dtype=np.bool_)
        self.pool = np.zeros(0, dtype=np.uint8)
        self.pool_used = 0

    def __len__(self) -> int:
        return len(self.index)

    def __bool__(self) -> bool:
        return bool(self.index)

    def held_keys(self) -> NDArray[np.void]:
        """The open datagrams' keys, oldest first."""
        return self.keys[self._alive_rows()]

    def find(self, key: bytes) -> int | None:
        return self.index.get(key)

    def obj(self, row: int) -> T | None:
        return self.objs.get(row)

    def lone(self, row: int) -> Lone:
        at, n = int(self.pos[row]), int(self.size[row])
        return Lone(
            int(self.ts[row]),
            int(self.frame[row]),
            int(self.off[row]),
            int(self.end[row]),
            bool(self.more[row]),
            self.pool[at : at + n].tobytes(),
            bool(self.cut[row]),
        )

    def attach(self, row: int, obj: T, cost: int) -> None:
        """The row's datagram is now `obj`, costing `cost` (its bytes left the pool)."""
        if row in self.objs:
            raise KeyError("the row has its object already")
        self.objs[row] = obj
        self.nbytes += cost - int(self.cost[row])
        self.objcost[row] = cost

    def charge(self, row: int, cost: int) -> None:
        """What the row's object costs now."""
        self.nbytes += cost - self.objcost[row]
        self.objcost[row] = cost

    def add(self, key: bytes, ts: int, obj: T, cost: int) -> int:
        """A new datagram, the newest: its row."""
        if key in self.index:
            raise KeyError("a datagram of this key is open already")
        self._room(1, 0)
        r = self.n
        self.keys[r] = np.frombuffer(key, dtype=self.keys.dtype)[0]
        self.ts[r], self.cost[r], self.alive[r], self.size[r] = ts, 0, True, 0
        self.n += 1
        self.index[key] = r
        self.objs[r] = obj
        self.objcost[r] = cost
        self.nbytes += cost
        return r

    def admit(
        self,
        keys: NDArray[np.void],
        key_list: list[bytes],
        *,
        ts: NDArray[np.int64],
        frame: NDArray[np.int64],
        off: NDArray[np.int64],
        end: NDArray[np.int64],
        more: NDArray[np.bool_],
        cut: NDArray[np.bool_],
        buf: NDArray[np.uint8],
        data: NDArray[np.int64],
        size: NDArray[np.int64],
        frag_cost: int,
    ) -> None:
        """New datagrams of one fragment each, newest last, none of their keys open: their
        fragments' bytes (`size` at `data` in `buf`) copied into the pool."""
        k = keys.shape[0]
        total = int(size.sum())
        self._room(k, total)
        r, p = self.n, self.pool_used
        rows = slice(r, r + k)
        self.keys[rows], self.ts[rows], self.frame[rows] = keys, ts, frame
        self.off[rows], self.end[rows], self.more[rows], self.cut[rows] = off, end, more, cut
        self.size[rows] = size
        self.pos[rows] = p + np.cumsum(size) - size
        self.cost[rows] = size + frag_cost
        self.alive[rows] = True
        _trains.gather(buf, np.ascontiguousarray(data, np.int64), size, self.pool[p : p + total])
        self.n += k
        self.pool_used += total
        before = len(self.index)
        self.index.update(zip(key_list, range(r, r + k), strict=True))
        if len(self.index) != before + k:  # a row would be alive but unreachable
            raise KeyError("admitted keys must be distinct and none open already")
        self.nbytes += int(self.cost[rows].sum())

    def remove(self, row: int) -> T | None:
        """A datagram that completed or was dropped: its object, if it had one."""
        del self.index[self.keys[row].tobytes()]
        self.alive[row] = False
        cost = self.objcost.pop(row, None)
        self.nbytes -= int(self.cost[row]) if cost is None else cost
        if row == self.head:
            self._advance()
        return self.objs.pop(row, None)

    def over(self) -> bool:
        return len(self.index) > self.max_open or self.nbytes > self.max_bytes

    def evict(self) -> Gone[T]:
        """The oldest datagrams, as few as bring the table within its bounds."""
        k = max(len(self.index) - self.max_open, 0)
        excess = self.nbytes - self.max_bytes
        if excess <= 0:
            return self._take(self._oldest(k) if k <= 8 else self._alive_rows()[:k])
        few = self._oldest_covering(k, excess)
        if few is not None:
            return self._take(few)
        rows = self._alive_rows()
        spent = np.cumsum(self._costs(rows))
        k = max(k, int(np.searchsorted(spent, excess, side="left")) + 1)
        return self._take(rows[:k])

    def expire(self, before: int) -> Gone[T]:
        """The datagrams that opened before `before`."""
        rows = self._alive_rows()
        return self._take(rows[self.ts[rows] < before])

    def drain(self) -> Gone[T]:
        """Every datagram."""
        return self._take(self._alive_rows())

    # ----- rows ------------------------------------------------------------------------
    def _alive_rows(self) -> NDArray[np.int64]:
        return self.head + np.flatnonzero(self.alive[self.head : self.n])

    def _take(self, rows: NDArray[np.int64]) -> Gone[T]:
        objs, bare = [], np.ones(rows.shape[0], dtype=np.bool_)
        if self.objs:
            for i, r in enumerate(rows.tolist()):
                o = self.objs.pop(r, None)
                if o is not None:
                    objs.append(o)
                    bare[i] = False
        keys = self.keys[rows]
        raw, w = keys.tobytes(), keys.dtype.itemsize
        index = self.index
        for at in range(0, len(raw), w):
            del index[raw[at : at + w]]
        self.alive[rows] = False
        lone = rows[bare]
        self.nbytes -= int(self.cost[lone].sum())
        for r in rows[~bare].tolist():
            self.nbytes -= self.objcost.pop(r)
        self._advance()
        return Gone(keys[bare], self.frame[lone], self.cut[lone], objs)

    def _costs(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """What each of these rows (increasing) costs."""
        cost = self.cost[rows]
        if self.objcost and rows.shape[0]:
            r = np.fromiter(self.objcost, dtype=np.int64, count=len(self.objcost))
            c = np.fromiter(self.objcost.values(), dtype=np.int64, count=len(self.objcost))
            at = np.minimum(np.searchsorted(rows, r), rows.shape[0] - 1)
            hit = rows[at] == r
            cost[at[hit]] = c[hit]
        return cost

    def _oldest_covering(self, k: int, excess: int, most: int = 8) -> NDArray[np.int64] | None:
        """The oldest rows, at least k of them, whose costs reach `excess`, read one by one
        from the head when at most `most` do (a tracker over its bytes by one fragment's
        evicts one or two at a time; the columns over the whole table cost ~150 us at 4096
        datagrams); None when more would."""
        rows: list[int] = []
        spent, r, alive, cost, objcost = 0, self.head, self.alive, self.cost, self.objcost
        while r < self.n and len(rows) < most:
            if alive[r]:
                rows.append(r)
                got = objcost.get(r)
                spent += int(cost[r]) if got is None else got
                if len(rows) >= k and spent >= excess:
                    return np.array(rows, dtype=np.int64)
            r += 1
        return None

    def _oldest(self, k: int) -> NDArray[np.int64]:
        """The k oldest rows, read one by one from the head: a tracker over its count by
        one datagram as each new one opens evicts one at a time."""
        rows: list[int] = []
        r, alive = self.head, self.alive
        while len(rows) < k and r < self.n:
            if alive[r]:
                rows.append(r)
            r += 1
        return np.array(rows, dtype=np.int64)

    def _advance(self) -> None:
        """The head to the oldest alive row (argmax of booleans stops at the first True)."""
        seg = self.alive[self.head : self.n]
        if seg.shape[0]:
            i = int(np.argmax(seg))
            self.head += i if seg[i] else seg.shape[0]

    def _room(self, rows: int, nbytes: int) -> None:
        """Space for `rows` more rows and `nbytes` more pool bytes. When either is full, the
        alive rows move to the start of new columns, and the bytes of those without an
        object to the start of the pool: in place while what is alive and new takes at most
        four fifths of it, else into a new pool a quarter larger than that. So each byte is
        moved a bounded number of times over its life (a fifth of the pool is free after a
        move), and the pool holds at most 1.25 times what the caller's bound lets it hold
        (its max_bytes) and a batch's new bytes, and the old one beside it while it grows
        (40,000 lone fragments of 8.9 KB: a scan's peak RSS 138 MB; 147 MB at 1.5 times,
        240 MB with a new pool at each move; 102 MB with a Python object each)."""
        if self.n + rows <= self.alive.shape[0] and self.pool_used + nbytes <= self.pool.shape[0]:
            return
        keep = self._alive_rows()
        m = keep.shape[0]
        objs = np.fromiter(self.objs, dtype=np.int64, count=len(self.objs))
        size = self.size[keep]
        size[member(keep, objs)] = 0  # an object holds its own bytes
        held = int(size.sum())
        pos = np.cumsum(size) - size
        self._pack(self.pos[keep], pos, size, held + nbytes)
        cap = max(2 * (m + rows), MIN_ROWS)
        for name in ("keys", "ts", "frame", "off", "end", "cost", "more", "cut"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[:m] = old[keep]
            setattr(self, name, new)
        self.size = np.zeros(cap, dtype=np.int64)
        self.size[:m] = size
        self.pos = np.zeros(cap, dtype=np.int64)
        self.pos[:m] = pos
        self.alive = np.zeros(cap, dtype=np.bool_)
        self.alive[:m] = True
        moved = np.searchsorted(keep, objs).tolist()  # keep is sorted: each object's new row
        self.objs = dict(zip(moved, self.objs.values(), strict=True))
        self.objcost = dict(zip(moved, (self.objcost[r] for r in objs.tolist()), strict=True))
        raw, w = self.keys[:m].tobytes(), self.keys.dtype.itemsize
        self.index = dict(
            zip([raw[at : at + w] for at in range(0, len(raw), w)], range(m), strict=True)
        )
        self.pool_used = held
        self.head, self.n = 0, m

    def _pack(
        self, src: NDArray[np.int64], dst: NDArray[np.int64], size: NDArray[np.int64], need: int
    ) -> None:
        """The byte ranges (src, size) moved to `dst` (their sizes' running sum), in a pool
        of at least `need` bytes."""
        if 5 * need <= 4 * self.pool.shape[0]:
            # In place, first to last: each range moves towards the start (rows append their
            # bytes in order, so src is increasing and dst <= src), and NumPy copies an
            # overlapping slice as memmove does.
            # Ranges that follow each other in the pool move as one (after an eviction,
            # nearly all of them do).
            have = size > 0
            s, d, n = src[have], dst[have], size[have]
            if s.shape[0] == 0:
                return
            run = np.flatnonzero(np.append(True, s[1:] != s[:-1] + n[:-1]))
            pool = self.pool
            for a, b, k in zip(
                s[run].tolist(), d[run].tolist(), np.add.reduceat(n, run).tolist(), strict=True
            ):
                if a != b:
                    pool[b : b + k] = pool[a : a + k]
            return
        pool = np.zeros(need * 5 // 4 + MIN_POOL, dtype=np.uint8)
        _trains.gather(self.pool, src, size, pool[: int(size.sum())])
        self.pool = pool
