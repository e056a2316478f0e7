"""checks/held.py against the structure it replaced: an OrderedDict of datagrams, oldest
first, evicting the oldest while over its bounds. Random operations (lone rows admitted a
batch at a time, objects added, rows grown into objects, charged, removed, evicted, expired,
drained), with the columns moved often (tiny minimum sizes): the same keys, order, frames,
bytes and objects must come out of both."""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytest

from netsleuth.checks import held
from netsleuth.checks.held import Gone, HeldTable

KEY = np.dtype((np.void, 6))
FRAG_COST = 10


@dataclass
class Entry:
    """The reference's datagram: its first fragment's fields, or an object once grown."""

    ts: int
    frame: int
    data: bytes
    cut: bool
    cost: int
    obj: str | None = None


class Reference:
    def __init__(self, max_open: int, max_bytes: int) -> None:
        self.max_open, self.max_bytes = max_open, max_bytes
        self.open: OrderedDict[bytes, Entry] = OrderedDict()

    def nbytes(self) -> int:
        return sum(e.cost for e in self.open.values())

    def evict(self) -> list[tuple[bytes, Entry]]:
        out = []
        while self.open and (len(self.open) > self.max_open or self.nbytes() > self.max_bytes):
            out.append(self.open.popitem(last=False))
        return out

    def take(self, keys: list[bytes]) -> list[tuple[bytes, Entry]]:
        return [(k, self.open.pop(k)) for k in keys]


def same_gone(gone: Gone[str], ref: list[tuple[bytes, Entry]]) -> None:
    lone = [(k, e) for k, e in ref if e.obj is None]
    assert [bytes(k) for k in gone.keys.tolist()] == [k for k, _ in lone]
    assert gone.frames.tolist() == [e.frame for _, e in lone]
    assert gone.cut.tolist() == [e.cut for _, e in lone]
    assert gone.objs == [e.obj for _, e in ref if e.obj is not None]
    assert len(gone) == len(ref)


def same_state(table: HeldTable[str], ref: Reference) -> None:
    assert len(table) == len(ref.open)
    assert table.nbytes == ref.nbytes()
    assert [bytes(k) for k in table.held_keys().tolist()] == list(ref.open)
    for key, e in ref.open.items():
        row = table.find(key)
        assert row is not None and int(table.ts[row]) == e.ts
        assert table.obj(row) == e.obj
        if e.obj is None:
            one = table.lone(row)
            assert (one.frame, one.data, one.cut, one.ts) == (e.frame, e.data, e.cut, e.ts)


class Run:
    """The same random operations on a HeldTable and on the Reference."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.max_open, self.max_bytes = self.rng.choice([(8, 10_000), (50, 400), (30, 10_000)])
        self.table: HeldTable[str] = HeldTable(KEY, self.max_open, self.max_bytes)
        self.ref = Reference(self.max_open, self.max_bytes)
        self.buf = np.frombuffer(self.rng.randbytes(4096), dtype=np.uint8)
        self.serial, self.clock = 0, 0

    def new_key(self) -> bytes:
        self.serial += 1
        return self.serial.to_bytes(6, "little")

    def admit(self) -> None:
        """A batch of lone rows."""
        rng, k = self.rng, self.rng.randrange(0, 12)
        keys = [self.new_key() for _ in range(k)]
        data = np.array([rng.randrange(0, 4000) for _ in range(k)], np.int64)
        size = np.array([rng.randrange(0, 60) for _ in range(k)], np.int64)
        cut = np.array([rng.random() < 0.3 for _ in range(k)], np.bool_)
        frames = np.arange(self.serial, self.serial + k, dtype=np.int64) * 3
        self.table.admit(
            np.frombuffer(b"".join(keys), dtype=KEY),
            keys,
            ts=np.full(k, self.clock, np.int64),
            frame=frames,
            off=np.full(k, 8, np.int64),
            end=np.full(k, 8, np.int64) + size,
            more=np.zeros(k, np.bool_),
            cut=cut,
            buf=self.buf,
            data=data,
            size=size,
            frag_cost=FRAG_COST,
        )
        for i, key in enumerate(keys):
            lo, n = int(data[i]), int(size[i])
            chunk = self.buf[lo : lo + n].tobytes()
            self.ref.open[key] = Entry(
                self.clock, int(frames[i]), chunk, bool(cut[i]), n + FRAG_COST
            )

    def add(self) -> None:
        """A datagram the slow path opened."""
        key, cost, obj = self.new_key(), self.rng.randrange(0, 200), f"obj{self.serial}"
        self.table.add(key, self.clock, obj, cost)
        self.ref.open[key] = Entry(self.clock, -1, b"", False, cost, obj)

    def pick(self) -> tuple[bytes, int] | None:
        if not self.ref.open:
            return None
        key = self.rng.choice(list(self.ref.open))
        row = self.table.find(key)
        assert row is not None
        return key, row

    def grow(self) -> None:
        """A row grows into an object, or an object grows."""
        if (picked := self.pick()) is None:
            return
        key, row = picked
        cost, e = self.rng.randrange(0, 300), self.ref.open[key]
        if e.obj is None:
            e.obj = f"grown{key.hex()}"
            self.table.attach(row, e.obj, cost)
        else:
            self.table.charge(row, cost)
        e.cost = cost

    def remove(self) -> None:
        """Completed or dropped."""
        if (picked := self.pick()) is not None:
            key, row = picked
            assert self.table.remove(row) == self.ref.open.pop(key).obj

    def evict(self) -> None:
        if self.table.over():
            same_gone(self.table.evict(), self.ref.evict())
        else:
            assert not self.ref.evict()

    def expire(self) -> None:
        before = self.clock - self.rng.randrange(0, 6)
        stale = [k for k, e in self.ref.open.items() if e.ts < before]
        same_gone(self.table.expire(before), self.ref.take(stale))

    def drain(self) -> None:
        same_gone(self.table.drain(), self.ref.take(list(self.ref.open)))


@pytest.mark.parametrize("seed", range(40))
def test_held_table_keeps_the_order_and_contents_of_an_ordered_dict(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(held, "MIN_ROWS", 4)
    monkeypatch.setattr(held, "MIN_POOL", 16)
    run = Run(seed)
    ops = [run.admit, run.add, run.grow, run.remove, run.evict, run.expire, run.drain]
    weights = [35, 15, 15, 15, 10, 7, 3]
    for _ in range(300):
        run.clock += run.rng.randrange(0, 3)
        run.rng.choices(ops, weights)[0]()
        same_state(run.table, run.ref)
        over = len(run.ref.open) > run.max_open or run.ref.nbytes() > run.max_bytes
        assert run.table.over() == over


def test_a_drained_table_holds_nothing_and_takes_rows_again() -> None:
    table: HeldTable[str] = HeldTable(KEY, 4, 1000)
    table.add(b"abcdef", 5, "x", 7)
    assert table and table.nbytes == 7
    gone = table.drain()
    assert gone.objs == ["x"] and gone.keys.shape[0] == 0
    assert not table and table.nbytes == 0 and table.find(b"abcdef") is None
    row = table.add(b"abcdef", 9, "y", 3)
    assert int(table.ts[row]) == 9 and table.obj(row) == "y"


def test_a_key_open_already_is_refused_not_shadowed() -> None:
    table: HeldTable[str] = HeldTable(KEY, 4, 1000)
    row = table.add(b"abcdef", 5, "x", 7)
    with pytest.raises(KeyError):
        table.add(b"abcdef", 6, "y", 7)
    with pytest.raises(KeyError):  # its cost would be counted twice
        table.attach(row, "y", 9)
    assert table.nbytes == 7 and table.obj(row) == "x"
    one = np.frombuffer(b"abcdef", dtype=KEY)
    zero, no = np.zeros(1, np.int64), np.zeros(1, np.bool_)
    with pytest.raises(KeyError):
        table.admit(
            one,
            [b"abcdef"],
            ts=zero,
            frame=zero,
            off=zero,
            end=zero,
            more=no,
            cut=no,
            buf=np.zeros(8, np.uint8),
            data=zero,
            size=zero,
            frag_cost=1,
        )
