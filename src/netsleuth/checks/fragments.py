"""The fragment audit: every IPv4/IPv6 fragment, outer and inside tunnels.

Per fragment (vectorized): zero_length, misaligned, too_large, df, tiny, IPv6 atomic.
Per datagram, keyed like a real reassembler (layer, VLANs, tunnel context, addresses,
protocol for IPv4, identification): overlap, overlap_conflict (policies disagree on the
bytes), duplicate, inconsistent, too_many, incomplete.

A datagram has a life, as in a reassembler (Linux net/ipv4/ip_fragment.c): it ends when
its last hole is filled, and the next fragment with the same key (16-bit IP ids recur)
starts a new one; one older than 30 s (ipfrag_time) expires as incomplete. Trains that
complete inside one batch (nearly all of them, overlapping, duplicated or not) are settled
there: _trains.c walks each key's fragments in arrival order, splits them into datagram
instances and gives each one's verdicts, which NumPy counts (_instances, _settle); the
rest go to a bounded Python tracker that keeps their bytes and their covered ranges, and
is the reference the walk is tested against (tests/test_fragment_trains.py). It holds
them in a HeldTable (held.py): a datagram of one fragment, as a flood makes thousands a
batch, is a row of columns; one that grows is a Datagram. The tracker is capped in
datagrams and bytes (each fragment charged FRAG_COST beyond its bytes); what falls out is
counted as fragment.evicted, never judged. A train settled in its batch is
never held, so it takes no slot of those bounds: once they evict, the tracker alone (one
fragment a batch) would have dropped some datagrams the batch path judges.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from netsleuth.checks import _trains
from netsleuth.checks.copies import DeviceCopies
from netsleuth.checks.frames import FrameTally
from netsleuth.checks.held import Gone, HeldTable
from netsleuth.checks.layers import ip_layers
from netsleuth.decode.table import FLAG_DF, IPLayer, PacketTable
from netsleuth.findings import MAX_FRAMES, Finding
from netsleuth.reassembly import Fragment, overlaps, policy_groups, rule_table

TIMEOUT_NS = 30 * 1_000_000_000  # net.ipv4.ipfrag_time default (Documentation/networking)
MAX_OPEN = 4096  # datagrams held at once
MAX_BYTES = 64 << 20  # fragment bytes held at once
# What one tracked fragment costs beyond its bytes (the Fragment object, list slots, the
# covered-range entries), charged against MAX_BYTES so the bound covers the whole state.
FRAG_COST = 160
# Datagram.extend inserts a run's ranges one by one when it has this many times fewer than
# the datagram holds, and sweeps them all together otherwise.
SWEEP_FEWER = 8
# DPDK's rte_ip_frag accepted at most RTE_LIBRTE_IP_FRAG_MAX_FRAG = 4 fragments per
# datagram by default; DPDK commit f8e0f8ce9030 ("ip_frag: increase default maximum of
# fragments") raised it to 8.
DPDK_MAX_FRAGS = 4
# Smallest transport header a first fragment must carry (RFC 1858 section 3; RFC 7112 for
# IPv6): TCP 20, UDP 8, ICMP/ICMPv6 8.
L4_MIN = {6: 20, 17: 8, 1: 8, 58: 8}
MAX_EVIDENCE = 20
# A datagram instance's flags, as _trains.c sets them.
COMPLETE, OVERLAP, DUP_ONLY, INCONSISTENT, CONFLICT, TOO_BIG, STALE = 1, 2, 4, 8, 16, 32, 64
RULES = np.array(rule_table(), dtype=np.uint16)  # the overlap policies, for _trains.c
MAX_FLAGGED_KEYS = 1000  # datagram keys remembered per finding id, for evidence export
# The ids of datagrams that leave the tracker uncompleted, (IPv4, IPv6).
EVICTED = ("fragment.evicted", "fragment.evicted")
INCOMPLETE = ("ipv4.fragment.incomplete", "ipv6.fragment.incomplete")
COPIES = "capture.device_copies"  # received fragments a cooked capture holds twice

KEY = np.dtype(
    [
        ("layer", "u1"),
        ("ver", "u1"),
        ("vlan1", "<u2"),
        ("vlan2", "<u2"),
        ("proto", "u1"),
        ("ident", "<u4"),
        ("src4", "<u4"),
        ("dst4", "<u4"),
        ("src6", "u1", (16,)),
        ("dst6", "u1", (16,)),
        ("tkind", "u1"),
        ("tkey", "<i8"),
        ("vni", "<i8"),
        ("tsrc4", "<u4"),
        ("tdst4", "<u4"),
        ("tsrc6", "u1", (16,)),
        ("tdst6", "u1", (16,)),
        # Where the fragment was seen (observed()): one datagram seen on two interfaces of
        # a capture, or going in and out of one, is two observations of it, each a whole
        # datagram, not one datagram whose every fragment came twice.
        ("obs", "<u8"),
        ("side", "<u2"),
    ]
)
KEY_VOID = np.dtype((np.void, KEY.itemsize))
# group_keys' result, made when first needed: (distinct keys, each key's group, hashes).
Grouping = Callable[[], tuple[NDArray[np.void], NDArray[np.int64], NDArray[np.uint64]]]


def _at(field: str) -> int:
    """Where a field of KEY starts in a key's bytes."""
    fields = KEY.fields
    assert fields is not None
    return int(fields[field][1])


_LAYER_AT, _VER_AT = _at("layer"), _at("ver")


@dataclass(frozen=True)
class Frags:
    """The tracked fragments of one batch and layer, as parallel arrays."""

    keys: NDArray[np.void]
    h: NDArray[np.uint64]  # key_hashes(keys), computed as the keys were built (keyed())
    ts: NDArray[np.int64]
    off: NDArray[np.int64]
    end: NDArray[np.int64]
    mf: NDArray[np.bool_]
    data: NDArray[np.int64]  # where the fragment's data starts in its buffer
    frames: NDArray[np.int64]
    v4: NDArray[np.bool_]
    size: NDArray[np.int64]  # the bytes of its data the capture holds (snap length)

    def take(self, sel: NDArray[np.int64]) -> Frags:
        return Frags(
            self.keys[sel],
            self.h[sel],
            self.ts[sel],
            self.off[sel],
            self.end[sel],
            self.mf[sel],
            self.data[sel],
            self.frames[sel],
            self.v4[sel],
            self.size[sel],
        )


@dataclass(frozen=True)
class Instances:
    """The datagram instances of one batch's fragments (FragmentAudit._instances)."""

    inst: NDArray[np.int64]  # per fragment (input order): its instance
    flags: NDArray[np.uint8]  # per instance: _trains.c's flags
    settled: NDArray[np.bool_]  # per instance: judged in this batch
    key: NDArray[np.int64]  # per instance: its key's index among the batch's distinct keys
    frame: NDArray[np.int64]  # per instance: its first (earliest) frame
    count: NDArray[np.int64]  # per instance: its fragments
    v4: NDArray[np.bool_]


@dataclass(frozen=True)
class Walk:
    """A batch's fragments walked by key (walk_trains)."""

    order: NDArray[np.int64]  # the fragments by key, arrival order within a key
    iid: NDArray[np.int64]  # per fragment, in `order`: its instance
    flags: NDArray[np.uint8]  # per instance: _trains.c's flags
    starts: NDArray[np.int64]  # per instance: where its fragments begin in `order`
    settled: NDArray[np.bool_]  # per instance: this batch settles it


class OuterKeys:
    """The reassembly keys of a batch's outer IP fragments (`rows`: every row whose outer
    layer is a fragment, in order), built once and grouped at most once for both checks
    that key them: the outer reassembly, which groups its UDP fragments to see which
    datagrams show their first fragment, then the fragment audit (checks.follow). Each
    grouped them on its own, a second sort of the same keys: 11% of a scan of
    overlapping trains. Both key an outer fragment alike (fragment_keys)."""

    def __init__(self, t: PacketTable, copies: NDArray[np.bool_] | None = None) -> None:
        self.t = t
        # The rows both checks leave out: copies of a received packet (checks/copies.py).
        self.copies = copies
        frag = (t.outer.ver != 0) & t.outer.is_frag
        self.rows = np.flatnonzero(frag if copies is None else frag & ~copies)
        self._keyed: tuple[NDArray[np.void], NDArray[np.uint64]] | None = None
        self._grouped: tuple[NDArray[np.void], NDArray[np.int64], NDArray[np.uint64]] | None
        self._grouped = None

    @property
    def keyed(self) -> tuple[NDArray[np.void], NDArray[np.uint64]]:
        """(the keys, their key_hashes), in `rows` order."""
        if self._keyed is None:
            self._keyed = keyed(self.t, "outer", self.t.outer, self.rows)
        return self._keyed

    def at(self, rows: NDArray[np.int64]) -> NDArray[np.int64] | None:
        """Where these rows (increasing, each an outer fragment's) are in `rows` (None:
        they are all of them, as in a batch whose outer fragments are all UDP)."""
        if rows.shape == self.rows.shape and np.array_equal(rows, self.rows):
            return None
        at = np.searchsorted(self.rows, rows)
        if at.shape[0] and (at[-1] >= self.rows.shape[0] or (self.rows[at] != rows).any()):
            raise ValueError("a row that holds no outer fragment")
        return at

    def grouped(
        self, at: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.void], NDArray[np.int64], NDArray[np.uint64]]:
        """group_keys of the keys at positions `at` (increasing; None: all of them): the
        batch's grouping restricted to them, its distinct keys in the same order."""
        if self._grouped is None:
            self._grouped = group_keys(*self.keyed)
        uniq, inv, hashes = self._grouped
        if at is None:
            return uniq, inv, hashes
        mine = inv[at]
        used = np.zeros(uniq.shape[0], dtype=np.bool_)
        used[mine] = True
        renumber = np.cumsum(used) - 1
        return uniq[used], renumber[mine], hashes[used]


def at_once(
    group: NDArray[np.int64],
    completes: NDArray[np.bool_],
    ts: NDArray[np.int64],
    cost: NDArray[np.int64],
    *,
    timeout_ns: int,
    max_bytes: int,
) -> list[tuple[int, int, bool]]:
    """The runs of consecutive fragments of one key (`group`), each as (start, stop, whether
    a tracker may take it in one go). One fragment at a time, a tracker checks after each
    whether it completed its datagram, whether the datagram expired before it came, and
    whether the bounds evict: a run of more than one fragment of which none can complete
    the datagram (`completes`: none marked), none later than the timeout after the first,
    and costing at most max_bytes in all leaves the same state taken at once
    (Datagram.extend) when it opens a new datagram: the newest row, which the bounds then
    never evict, while they evict the same older ones at the run's end as along it. A
    run that continues a held datagram needs more (outer_reassembly._extend,
    FragmentAudit._continues: the whole table within its bytes, no completion possible).
    A FragmentSmack-style train (many small fragments, MF=1) went fragment by fragment
    through both trackers: 0.15 M packets/s."""
    n = group.shape[0]
    if n == 0:
        return []
    first = np.flatnonzero(np.diff(group, prepend=group[0] - 1))
    last = np.append(first[1:], n)
    bulk = (last - first > 1) & ~np.logical_or.reduceat(completes, first)
    # Unsigned: a capture's timestamps may lie anywhere in int64 (the latest is at least
    # the first, so the difference is exact).
    spread = np.maximum.reduceat(ts, first).view(np.uint64) - ts[first].view(np.uint64)
    bulk &= spread <= np.uint64(timeout_ns)
    bulk &= np.add.reduceat(cost, first) <= max_bytes
    return list(zip(first.tolist(), last.tolist(), bulk.tolist(), strict=True))


def by_group(group: NDArray[np.int64]) -> NDArray[np.int64]:
    """Positions sorted by group (non-negative), in position order within a group: what
    np.argsort(group, kind="stable") gives, as a quicksort of (group, position) made
    unique. NumPy's quicksort of int64 is vectorized; its stable sort is several times
    slower (300k fragments: 4 ms against 21)."""
    n = group.shape[0]
    if n == 0 or int(group.min()) < 0 or int(group.max()) >= (1 << 62) // n:
        return np.argsort(group, kind="stable")
    return np.argsort(group * n + np.arange(n, dtype=np.int64))


def walk_trains(
    group: NDArray[np.int64],
    held: NDArray[np.bool_],
    buf: NDArray[np.uint8],
    *,
    more: NDArray[np.bool_],
    off: NDArray[np.int64],
    end: NDArray[np.int64],
    data: NDArray[np.int64],
    size: NDArray[np.int64],
    ts: NDArray[np.int64],
    timeout_ns: int = TIMEOUT_NS,
    spoilt: NDArray[np.bool_] | None = None,
) -> Walk:
    """Split each key's fragments (`group`: the key's index; `held`: per key, a datagram of
    it is held from an earlier batch) into datagram instances as the trackers would, in
    arrival order, and say which instances this batch settles: for the fragment audit and
    the outer reassembly alike.

    A reassembler frees a datagram when its last hole is filled (Linux: ip_frag_reasm runs
    once INET_FRAG_FIRST_IN | INET_FRAG_LAST_IN are set and meat == len, and the queue is
    killed), so the next fragment with the same key (IP ids are 16 bits and recur) starts
    a new datagram. _trains.c walks the fragments by key and gives each instance's verdict
    flags. A key's instances settle up to the first one that cannot: still open at the
    batch's end, spread over more than the timeout (a tracker expires in order),
    continuing a datagram a tracker holds, of more fragments than _trains.c takes
    (TOO_BIG), or holding a fragment the caller marks `spoilt`; from there on the tracker
    follows the key fragment by fragment."""
    n = group.shape[0]
    order = by_group(group)
    g = group[order]
    first = np.ones(n, dtype=np.bool_)
    first[1:] = g[1:] != g[:-1]
    iid = np.empty(n, dtype=np.int64)
    flags = np.empty(n, dtype=np.uint8)
    marks = (first.view(np.uint8), (~more[order]).view(np.uint8))
    cols = (off[order], end[order], data[order], size[order], ts[order])
    ni = _trains.trains(*marks, *cols, timeout_ns, buf, RULES, iid, flags)
    flags = flags[:ni]
    starts = np.flatnonzero(np.diff(iid, prepend=-1))
    key = g[starts]
    clean = (flags & (COMPLETE | TOO_BIG | STALE)) == COMPLETE
    if spoilt is not None:
        bad = np.zeros(ni, dtype=np.bool_)
        np.logical_or.at(bad, iid, spoilt[order])
        clean &= ~bad
    # Per key, the instances before the first unclean one are settled.
    bad_at = np.full(int(g[-1]) + 1, ni, dtype=np.int64)
    unclean = np.flatnonzero(~clean)
    np.minimum.at(bad_at, key[unclean], unclean)
    settled = (np.arange(ni) < bad_at[key]) & ~held[key]
    return Walk(order, iid, flags, starts, settled)


@dataclass(slots=True)
class Datagram:
    """One datagram instance in the tracker: its fragments (bytes kept for the overlap
    policies) and the byte ranges they cover, merged, so completeness never depends on
    what was stored."""

    key: bytes
    layer: str
    ver: int
    first_ts: int
    frags: list[Fragment] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    count: int = 0
    nbytes: int = 0
    starts: list[int] = field(default_factory=list)  # covered ranges, sorted and merged
    ends: list[int] = field(default_factory=list)
    last_end: int = -1  # furthest end of an MF=0 fragment (-1: none seen)

    @classmethod
    def lone(
        cls, key: bytes, layer: str, ver: int, frag: Fragment, *, end: int, ts: int
    ) -> Datagram:
        """A datagram of one fragment, built without __init__ and add(): what add() would
        give, for the bulk path (_admit) where a fragment flood makes thousands a batch."""
        dg = object.__new__(cls)
        dg.key, dg.layer, dg.ver, dg.first_ts = key, layer, ver, ts
        dg.frags, dg.frames, dg.count = [frag], [frag.frame], 1
        dg.nbytes = len(frag.data) + FRAG_COST
        dg.last_end = -1 if frag.more else end
        covered = end > frag.offset
        dg.starts = [frag.offset] if covered else []
        dg.ends = [end] if covered else []
        return dg

    def add(self, frag: Fragment, end: int) -> None:
        self.count += 1
        self.frames.append(frag.frame)
        self.frags.append(frag)
        self.nbytes += len(frag.data) + FRAG_COST
        if not frag.more:
            self.last_end = max(self.last_end, end)
        if end > frag.offset:
            self._cover(frag.offset, end)

    def extend(self, frags: list[Fragment], ends: list[int]) -> None:
        """Fragments added at once (each with its end): what add() gives one by one, for
        a run of fragments that cannot complete the datagram (at_once). The covered ranges
        are merged in one sweep (ranges that touch merge, as _cover merges them), or, a
        few into many, inserted one by one as add() does."""
        self.tally([f.frame for f in frags], sum(len(f.data) for f in frags))
        self.place(frags, ends)

    def tally(self, frames: list[int], nbytes: int) -> None:
        """Fragments counted in (their frames, their data's bytes), as extend() counts
        them, ahead of their bytes and ranges (place): outer_reassembly defers those while
        its datagram cannot complete (Held.later)."""
        self.count += len(frames)
        self.frames.extend(frames)
        self.nbytes += nbytes + FRAG_COST * len(frames)

    def place(self, frags: list[Fragment], ends: list[int]) -> None:
        """The fragments' bytes and covered ranges, after tally() counted them."""
        self.frags.extend(frags)
        for f, end in zip(frags, ends, strict=True):
            if not f.more and end > self.last_end:
                self.last_end = end
        new = [(f.offset, end) for f, end in zip(frags, ends, strict=True) if end > f.offset]
        if len(new) * SWEEP_FEWER < len(self.starts):
            # A few ranges into many (a FragmentSmack train's thousands of 8-byte pieces,
            # a run at a time): one bisect each, not a sweep over every range held, which
            # made a long train quadratic (300k fragments: 9.5 s of 12).
            for lo, hi in new:
                self._cover(lo, hi)
            return
        starts: list[int] = []
        stops: list[int] = []
        for lo, hi in sorted([*zip(self.starts, self.ends, strict=True), *new]):
            if starts and lo <= stops[-1]:
                stops[-1] = max(stops[-1], hi)
            else:
                starts.append(lo)
                stops.append(hi)
        self.starts, self.ends = starts, stops

    def _cover(self, lo: int, hi: int) -> None:
        i = bisect.bisect_left(self.ends, lo)  # first range ending at or after lo
        j = bisect.bisect_right(self.starts, hi)  # ranges starting at or before hi
        if i < j:
            lo, hi = min(lo, self.starts[i]), max(hi, self.ends[j - 1])
        self.starts[i:j] = [lo]
        self.ends[i:j] = [hi]

    def complete(self) -> bool:
        """No hole from 0 up to the end of the last fragment (RFC 791 section 3.2; RFC 8200
        section 4.5): what every reassembler waits for before it frees the datagram."""
        if self.last_end <= 0:
            return self.last_end == 0
        return len(self.starts) == 1 and self.starts[0] == 0 and self.ends[0] >= self.last_end


class _Columns(NamedTuple):
    """The columns of the fragments FragmentAudit._track follows, as lists (one NumPy
    element read costs more than the rest of the slow path's work a fragment)."""

    mv: memoryview  # the batch buffer
    ts: list[int]
    off: list[int]
    end: list[int]
    data: list[int]
    size: list[int]
    mf: list[bool]
    frame: list[int]
    v4: list[bool]

    @classmethod
    def of(cls, mv: memoryview, f: Frags) -> _Columns:
        cols = (f.ts, f.off, f.end, f.data, f.size, f.mf, f.frames, f.v4)
        return cls(mv, *(c.tolist() for c in cols))

    def fragments(self, a: int, b: int) -> list[Fragment]:
        """Fragments a..b-1, their bytes copied."""
        mv, off, data, size = self.mv, self.off, self.data, self.size
        mf, frame = self.mf, self.frame
        return [
            Fragment(off[i], bytes(mv[data[i] : data[i] + size[i]]), mf[i], frame[i])
            for i in range(a, b)
        ]


class FlaggedKeys:
    """The reassembly keys one finding id flagged, for evidence export: the
    MAX_FLAGGED_KEYS keys flagged at the earliest frames (each key at the first frame it
    was flagged at; ties by key), so the same keys whatever order datagrams end in (a batch
    end expires some, a later fragment others; a split file's ranges or fanout workers
    are merged in yet another). Kept first-come, the choice past the bound depended on
    the reader's buffer size."""

    def __init__(self) -> None:
        self.first: dict[bytes, int] = {}  # key -> the earliest frame it was flagged at
        # Once MAX_FLAGGED_KEYS are held, a key flagged after this frame cannot make it.
        self.cut = np.iinfo(np.int64).max

    def add(self, keys: NDArray[np.void] | list[bytes], frames: NDArray[np.int64]) -> None:
        """Keys, each flagged at the frame beside it."""
        pick = np.flatnonzero(frames <= self.cut)
        if pick.shape[0] > MAX_FLAGGED_KEYS:  # a flood's batch: only its earliest can count
            kth = np.partition(frames[pick], MAX_FLAGGED_KEYS - 1)[MAX_FLAGGED_KEYS - 1]
            pick = pick[frames[pick] <= kth]
        first = self.first
        for i, frame in zip(pick.tolist(), frames[pick].tolist(), strict=True):
            k = keys[i]
            key = k if isinstance(k, bytes) else k.tobytes()
            if frame < first.get(key, frame + 1):
                first[key] = frame
        if len(first) > 2 * MAX_FLAGGED_KEYS:
            self._prune()

    def merge(self, other: FlaggedKeys, frame_offset: int) -> None:
        frames = np.fromiter(other.first.values(), np.int64, len(other.first))
        self.add(list(other.first), frames + frame_offset)

    def keys(self) -> set[bytes]:
        self._prune()
        return set(self.first)

    def _prune(self) -> None:
        if len(self.first) <= MAX_FLAGGED_KEYS:
            return
        kept = sorted(self.first.items(), key=lambda kv: (kv[1], kv[0]))[:MAX_FLAGGED_KEYS]
        self.first = dict(kept)
        self.cut = kept[-1][1]


class FragmentAudit:
    def __init__(
        self, *, timeout_ns: int = TIMEOUT_NS, max_open: int = MAX_OPEN, max_bytes: int = MAX_BYTES
    ) -> None:
        self.timeout_ns = timeout_ns
        self.max_open = max_open
        self.max_bytes = max_bytes
        self.tally = FrameTally()
        self.open: HeldTable[Datagram] = HeldTable(KEY_VOID, max_open, max_bytes)
        self.evidence: dict[str, list[dict[str, Any]]] = {}
        # finding id -> reassembly keys of the datagrams it flagged (export pulls in their
        # whole fragment trains).
        self.flagged: dict[str, FlaggedKeys] = {}
        self.now = 0
        # A cooked capture's copies of one received fragment (checks.follow runs it first).
        self.copies = DeviceCopies()

    # ----- per batch ---------------------------------------------------------------------
    def observe(
        self,
        t: PacketTable,
        *,
        now: int | None = None,
        rebuilt: Sequence[PacketTable] = (),
        outer: OuterKeys | None = None,
    ) -> None:
        """One batch, with the packets the outer reassembly rebuilt from it (`rebuilt`:
        their inner layer, each at the frame that completed its outer datagram). `now` is
        the batch's latest timestamp when `t` holds only some of its packets (the fragments
        a worker handed over: netsleuth/scale/).

        The inner fragments of both are followed together, in frame order: a reassembler
        behind the tunnel sees a rebuilt packet when its outer datagram completes. Taken
        one table after the other, every inner fragment carried whole came before any
        carried in outer fragments: a datagram split between the two (ordinary VXLAN over
        a small MTU) was seen last fragment first, and once a batch held more than the
        table's 4096 such datagrams, its first fragments opened new ones, reported
        evicted and incomplete; a capture with recurring IP ids got false duplicates.
        `outer`: t's outer fragments' keys, when the outer reassembly made them first."""
        if t.n:
            self.now = max(self.now, int(t.batch.ts_ns.max()))
        if now is not None:
            self.now = max(self.now, now)
        mine = outer if outer is not None else OuterKeys(t)
        if mine.copies is not None:
            self.tally.add(COPIES, t.frame[mine.copies])
        found: dict[str, list[tuple[NDArray[np.uint8], Frags]]] = {}
        grouping: Grouping | None = None  # t's outer fragments': the one part of its layer
        for table in (t, *rebuilt):
            for layer_name, layer, present in ip_layers(table):
                shared = table is t and layer_name == "outer"
                taken = present & layer.is_frag
                if table is t and mine.copies is not None:
                    taken &= ~mine.copies
                rows = mine.rows if shared else np.flatnonzero(taken)
                if rows.shape[0] == 0:
                    continue
                made = mine.keyed if shared else keyed(table, layer_name, layer, rows)
                got = self._layer(table, layer_name, layer, rows, made)
                if got is None:
                    continue
                f, track = got
                if shared:
                    grouping = partial(mine.grouped, track)
                found.setdefault(layer_name, []).append((table.batch.buf, f))
        for layer_name, parts in found.items():
            group = grouping if layer_name == "outer" and len(parts) == 1 else None
            self._group(*_in_frame_order(parts), layer_name, group)
        self._expire()

    def advance(self, now: int) -> None:
        """A batch without fragments ended at `now`: what observe would do for it."""
        self.now = max(self.now, now)
        self._expire()

    def _layer(
        self,
        t: PacketTable,
        name: str,
        layer: IPLayer,
        rows: NDArray[np.int64],
        made: tuple[NDArray[np.void], NDArray[np.uint64]],
    ) -> tuple[Frags, NDArray[np.int64] | None] | None:
        """The per-fragment findings of these rows (`made`: their keyed()); the fragments
        to follow, and which of the rows they are (None: all)."""
        v4 = layer.ver[rows] == 4
        off = layer.frag_off[rows].astype(np.int64)
        mf = (layer.flags[rows] & 1) != 0
        start = t.start[rows]
        data = start + layer.frag_data[rows]
        ip_end = start + layer.off[rows] + layer.tot_len[rows].astype(np.int64)
        plen = ip_end - data
        end = off + plen
        frames = t.frame[rows]
        proto = layer.proto[rows]
        hlen = layer.hlen[rows].astype(np.int64)

        keys, h = made

        def per_frag(v4_id: str, v6_id: str | None, hit: NDArray[np.bool_]) -> None:
            for fid, sel in ((v4_id, hit & v4), (v6_id, hit & ~v4)):
                if fid is not None and sel.any():
                    self.tally.add(f"{fid}|{name}", frames[sel])
                    self._flag_keys(fid, keys[sel], frames[sel])

        per_frag("ipv4.fragment.zero_length", "ipv6.fragment.zero_length", plen <= 0)
        per_frag("ipv4.fragment.misaligned", None, mf & (plen > 0) & (plen % 8 != 0))
        # The reassembled datagram would exceed 65535 bytes (RFC 791; "ping of death").
        per_frag("ipv4.fragment.too_large", None, end + hlen > 65535)
        per_frag("ipv4.fragment.df", None, (layer.flags[rows] & FLAG_DF) != 0)
        l4min = np.zeros(256, dtype=np.int64)
        for p, n in L4_MIN.items():
            l4min[p] = n
        per_frag(
            "ipv4.fragment.tiny",
            "ipv6.fragment.tiny",
            (off == 0) & mf & (plen >= 0) & (plen < l4min[proto]),
        )
        # An atomic fragment (offset 0, M=0) is a whole packet: RFC 6946 section 4 says to
        # process it in isolation, so it is reported and not tracked.
        atomic = ~v4 & (off == 0) & ~mf
        if atomic.any():
            self.tally.add(f"ipv6.fragment.atomic|{name}", frames[atomic])
            self._flag_keys("ipv6.fragment.atomic", keys[atomic], frames[atomic])
        # A total length shorter than the header (zero_length above) never reaches a
        # reassembler: Linux drops it as a header error first (ip_rcv_core: len <
        # iph->ihl*4, inhdr_error). Tracked, its end (offset + a negative length) could be
        # 0, which would "complete" a datagram of one fragment.
        track = np.flatnonzero(~atomic & (plen >= 0))
        if track.shape[0] == 0:
            return None
        # What the capture holds of each fragment's data: up to its header's end or the
        # record's cut, whichever comes first.
        stop = np.minimum(data + np.maximum(end - off, 0), start + t.batch.caplen[rows])
        size = np.maximum(stop - data, 0)
        ts = t.batch.ts_ns[rows]
        f = Frags(keys, h, ts, off, end, mf, data, frames, v4, size)
        return (f, None) if track.shape[0] == rows.shape[0] else (f.take(track), track)

    def _group(
        self, buf: NDArray[np.uint8], f: Frags, name: str, grouping: Grouping | None = None
    ) -> None:
        """One layer's fragments of a batch (in arrival order; their data in `buf`);
        `grouping`: group_keys of their keys, made already (OuterKeys)."""
        h = f.h
        opened = self.open.held_keys()
        if all_new(f.keys, h, opened):
            # All new, all lone (a flood of fragments that never complete looks like this):
            # one fragment completes nothing; admitted in arrival order, no sort.
            self._admit(buf, f)
            return
        uniq, inv, hashes = grouping() if grouping is not None else group_keys(f.keys, h)
        held = open_among(uniq, hashes, opened)
        raw, w = uniq.tobytes(), KEY.itemsize

        def keys_of(groups: NDArray[np.int64]) -> list[bytes]:
            return [raw[g * w : g * w + w] for g in groups.tolist()]

        if uniq.shape[0] == inv.shape[0]:  # every key once: nothing settles here
            settled = np.zeros(inv.shape[0], dtype=np.bool_)
        else:
            found = self._instances(inv, f, held, buf)
            self._settle(name, f, uniq, found, buf)
            settled = found.settled[found.inst]
        rest = np.flatnonzero(~settled)
        if rest.shape[0] == 0:
            return
        rest = rest[by_group(inv[rest])]  # by key, arrival order kept
        per_key = np.bincount(inv[rest], minlength=uniq.shape[0])
        alone = (per_key[inv[rest]] == 1) & ~held[inv[rest]]
        # The new one-fragment datagrams first: _admit may evict the whole table, which
        # must not take datagrams this batch's later fragments opened or continued.
        single = np.sort(rest[alone])  # arrival order: the order of age for eviction
        if single.shape[0]:
            self._admit(buf, f.take(single))
        multi = rest[~alone]
        if multi.shape[0]:
            self._track(buf, name, f.take(multi), keys_of(inv[multi]), inv[multi])

    def _instances(
        self,
        inv: NDArray[np.int64],
        f: Frags,
        held: NDArray[np.bool_],
        buf: NDArray[np.uint8],
    ) -> Instances:
        """The batch's datagram instances (walk_trains), with what _settle needs of each."""
        w = walk_trains(
            inv,
            held,
            buf,
            more=f.mf,
            off=f.off,
            end=f.end,
            data=f.data,
            size=f.size,
            ts=f.ts,
            timeout_ns=self.timeout_ns,
        )
        inst = np.empty(inv.shape[0], dtype=np.int64)
        inst[w.order] = w.iid
        first = w.order[w.starts]
        return Instances(
            inst=inst,
            flags=w.flags,
            settled=w.settled,
            key=inv[first],
            frame=f.frames[first],
            count=np.diff(np.append(w.starts, inv.shape[0])),
            v4=f.v4[first],
        )

    def _settle(
        self, name: str, f: Frags, uniq: NDArray[np.void], found: Instances, buf: NDArray[np.uint8]
    ) -> None:
        """The verdicts of the datagrams this batch settled, each what _finish gives a
        complete one: its fragments counted under every id that applies, its key flagged
        at its first frame."""
        flags, settled = found.flags, found.settled
        v4 = settled & found.v4
        overlap = settled & ((flags & (OVERLAP | DUP_ONLY)) == OVERLAP)
        for fid, sel in (
            ("ipv4.fragment.too_many", v4 & (found.count > DPDK_MAX_FRAGS)),
            ("ipv4.fragment.inconsistent", v4 & ((flags & INCONSISTENT) != 0)),
            ("ipv4.fragment.duplicate", v4 & ((flags & DUP_ONLY) != 0)),
            ("ipv4.fragment.overlap", overlap & found.v4),
            ("ipv6.fragment.overlap", overlap & ~found.v4),
            ("ipv4.fragment.overlap_conflict", v4 & ((flags & CONFLICT) != 0)),
        ):
            if not sel.any():
                continue
            self.tally.add(f"{fid}|{name}", f.frames[sel[found.inst]])
            self._flag_keys(fid, uniq[found.key[sel]], found.frame[sel])
            if fid == "ipv4.fragment.overlap_conflict":
                self._conflict_evidence(f, found, sel, buf)

    def _conflict_evidence(
        self, f: Frags, found: Instances, sel: NDArray[np.bool_], buf: NDArray[np.uint8]
    ) -> None:
        """Evidence of the settled conflicting datagrams (`sel`) that can be among the
        first MAX_EVIDENCE (by first frame): their policies' payloads, built here exactly as
        _finish builds them (a batch of a flood holds thousands; at most MAX_EVIDENCE are
        built)."""
        held = self.evidence.setdefault("ipv4.fragment.overlap_conflict", [])
        chosen = np.flatnonzero(sel)
        if len(held) >= MAX_EVIDENCE:
            chosen = chosen[found.frame[chosen] <= held[-1]["frames"][0]]
        chosen = chosen[np.argsort(found.frame[chosen], kind="stable")][:MAX_EVIDENCE]
        for k in chosen.tolist():
            mine = np.flatnonzero(found.inst == k)  # arrival order
            frags = [
                Fragment(off, buf[d : d + n].tobytes(), mf, frame)
                for off, d, n, mf, frame in zip(
                    f.off[mine].tolist(),
                    f.data[mine].tolist(),
                    f.size[mine].tolist(),
                    f.mf[mine].tolist(),
                    f.frames[mine].tolist(),
                    strict=True,
                )
            ]
            entry = _conflict_entry(frags)
            if entry is not None:  # always: _trains.c flagged it by the same rules
                _keep_first(held, entry)

    def _track(
        self,
        buf: NDArray[np.uint8],
        name: str,
        f: Frags,
        keys: list[bytes],
        group: NDArray[np.int64],
    ) -> None:
        """The rare path: follow these fragments one by one, keeping their bytes. They come
        in arrival order within each key (`group`: the key's index), the keys in their
        hashes' order (group_keys): the order between keys changes no verdict, only, once a
        bound evicts, which datagrams are evicted (counted as fragment.evicted, never
        judged). A key's run none of whose fragments can complete its datagram (no MF=0
        among them: a FragmentSmack-style train) goes in at once (at_once) when it opens
        a datagram, or continues a held one where _continues says nothing changes."""
        mv = buf.data
        opened, timeout = self.open, self.timeout_ns
        cols = _Columns.of(mv, f)
        _, ts, off, end, data, size, mf, frame, v4 = cols
        cost = f.size + FRAG_COST
        runs = at_once(group, ~f.mf, f.ts, cost, timeout_ns=timeout, max_bytes=self.max_bytes)
        for a, b, whole in runs:
            key = keys[a]
            if whole and self._at_once(key, name, cols, a, b, cost=int(cost[a:b].sum())):
                continue
            for i in range(a, b):
                now = ts[i]
                row = opened.find(key)
                if row is not None:
                    dg = opened.obj(row) or self._grown(row, key)
                    if now > dg.first_ts + timeout:  # expired before this fragment arrived
                        opened.remove(row)
                        self._finish(dg, complete=False)
                        row = None
                if row is None:
                    dg = Datagram(key, name, 4 if v4[i] else 6, now)
                    row = opened.add(key, now, dg, 0)
                chunk = bytes(mv[data[i] : data[i] + size[i]])
                dg.add(Fragment(off[i], chunk, mf[i], frame[i]), end[i])
                opened.charge(row, dg.nbytes)
                if dg.complete():
                    opened.remove(row)
                    self._finish(dg, complete=True)
                if opened.over():
                    self._bound()

    def _at_once(self, key: bytes, name: str, cols: _Columns, a: int, b: int, *, cost: int) -> bool:
        """Fragments a..b-1, a run of one key none of which can complete a datagram
        (at_once), into it at once where that leaves what one by one leaves: a new
        datagram (the newest row, which the bounds then never evict), or the held one
        when _continues says so. Whether they went in."""
        opened = self.open
        row = opened.find(key)
        if row is None:
            dg = Datagram(key, name, 4 if cols.v4[a] else 6, cols.ts[a])
            dg.extend(cols.fragments(a, b), cols.end[a:b])
            opened.add(key, cols.ts[a], dg, dg.nbytes)
            if opened.over():
                self._bound()
            return True
        dg = opened.obj(row) or self._grown(row, key)
        if not self._continues(dg, max(cols.ts[a:b]), cost):
            return False
        dg.extend(cols.fragments(a, b), cols.end[a:b])
        opened.charge(row, dg.nbytes)
        return True

    def _continues(self, dg: Datagram, latest: int, cost: int) -> bool:
        """Whether a run of a key's fragments (at_once: none with MF=0, within the timeout
        of its first) goes into its held datagram `dg` at once, leaving what one by one
        leaves: none can complete it (no MF=0 fragment held either: Datagram.complete
        needs one), none came after it expired, and no bound can evict along the run
        (extending adds no row, and the bytes stay within max_bytes). FragmentSmack's
        trains (thousands of 8-byte fragments a datagram, over many batches) went one by
        one here: 300k fragments, 0.9 s of a 2.5 s scan."""
        opened = self.open
        return (
            dg.last_end < 0
            and latest <= dg.first_ts + self.timeout_ns
            and not opened.over()
            and opened.nbytes + cost <= self.max_bytes
        )

    def _grown(self, row: int, key: bytes) -> Datagram:
        """The Datagram of a row that held one fragment alone (_admit), now that another
        fragment of its key came (or it ends): attached to its row, its place in age kept."""
        one = self.open.lone(row)
        frag = Fragment(one.off, one.data, one.more, one.frame)
        layer = "inner" if key[_LAYER_AT] else "outer"
        dg = Datagram.lone(key, layer, key[_VER_AT], frag, end=one.end, ts=one.ts)
        self.open.attach(row, dg, dg.nbytes)
        return dg

    def _admit(self, buf: NDArray[np.uint8], f: Frags) -> None:
        """New datagrams of one fragment each (a flood of fragments that never complete
        looks like this; so does the start of a train the next batch finishes), none of
        their keys open. One fragment never completes a datagram, so they all open, as
        rows of the held table (held.py), with no object each. Eviction is oldest first,
        so what stays after all of them is the longest suffix of (open table, these) that
        fits the bounds: the rest is counted as evicted at once, without holding it."""
        size = f.size
        drop = size.shape[0] - newest_kept(size, self.max_open, self.max_bytes)
        if drop:
            self._gone(self.open.drain(), evicted=True)
            self._count_lone(EVICTED, f.keys[:drop], f.frames[:drop], flag=False)
        keys = f.keys[drop:]
        self.open.admit(
            keys,
            key_bytes(keys),
            ts=f.ts[drop:],
            frame=f.frames[drop:],
            off=f.off[drop:],
            end=f.end[drop:],
            more=f.mf[drop:],
            cut=np.zeros(keys.shape[0], dtype=np.bool_),
            buf=buf,
            data=f.data[drop:],
            size=size[drop:],
            frag_cost=FRAG_COST,
        )
        self._bound()

    @property
    def flagged_keys(self) -> dict[str, set[bytes]]:
        """Finding id -> the reassembly keys of the datagrams it flagged (FlaggedKeys)."""
        return {fid: held.keys() for fid, held in self.flagged.items()}

    def _flag_keys(
        self, fid: str, keys: NDArray[np.void] | list[bytes], frames: NDArray[np.int64]
    ) -> None:
        self.flagged.setdefault(fid, FlaggedKeys()).add(keys, frames)

    def _dg_flag(self, fid: str, dg: Datagram, frames: NDArray[np.int64]) -> None:
        self.tally.add(f"{fid}|{dg.layer}", frames)
        self._flag_keys(fid, [dg.key], np.array([frames.min()], np.int64))

    # ----- state bounds ------------------------------------------------------------------
    def _bound(self) -> None:
        """Drop the oldest open datagrams until the table fits its bounds (a host's
        reassembler evicts under ipfrag_high_thresh the same way), counting their frames
        as evicted."""
        if self.open.over():
            self._gone(self.open.evict(), evicted=True)

    def _expire(self) -> None:
        self._gone(self.open.expire(self.now - self.timeout_ns), evicted=False)

    def _gone(self, gone: Gone[Datagram], *, evicted: bool) -> None:
        """Datagrams that left the table uncompleted: evicted, or expired (incomplete)."""
        if evicted:
            self._count_lone(EVICTED, gone.keys, gone.frames, flag=False)
            for dg in gone.objs:
                self.tally.add(f"fragment.evicted|{dg.layer}", np.array(dg.frames, np.int64))
            return
        self._count_lone(INCOMPLETE, gone.keys, gone.frames, flag=True)
        for dg in gone.objs:
            self._finish(dg, complete=False)

    def _count_lone(
        self, ids: tuple[str, str], keys: NDArray[np.void], frames: NDArray[np.int64], *, flag: bool
    ) -> None:
        """Datagrams of one fragment each (their keys, their frames), counted per layer
        under ids[0] (IPv4) or ids[1] (IPv6), and their keys flagged (`flag`). One fragment
        is never complete, and nothing else of _finish's applies to it."""
        if keys.shape[0] == 0:
            return
        k = keys.view(KEY)
        for layer, name in ((0, "outer"), (1, "inner")):
            for ver, fid in ((4, ids[0]), (6, ids[1])):
                sel = (k["layer"] == layer) & (k["ver"] == ver)
                if not sel.any():
                    continue
                self.tally.add(f"{fid}|{name}", frames[sel])
                if flag:
                    self._flag_keys(fid, keys[sel], frames[sel])

    # ----- datagram verdicts ---------------------------------------------------------------
    def _finish(self, dg: Datagram, *, complete: bool) -> None:
        ip = "ipv4" if dg.ver == 4 else "ipv6"
        frames = np.array(dg.frames, dtype=np.int64)
        if not complete:
            self._dg_flag(f"{ip}.fragment.incomplete", dg, frames)
        if dg.ver == 4 and dg.count > DPDK_MAX_FRAGS:
            self._dg_flag("ipv4.fragment.too_many", dg, frames)
        frs = [f for f in dg.frags if f.data]
        lasts = {f.end for f in dg.frags if not f.more}
        if dg.ver == 4 and (
            len(lasts) > 1 or (lasts and max(f.end for f in frs or dg.frags) > min(lasts))
        ):
            self._dg_flag("ipv4.fragment.inconsistent", dg, frames)
        if not overlaps(frs):
            return
        spans = {(f.offset, f.data) for f in frs}
        if len(spans) < len(frs) and _only_duplicates(frs):
            if dg.ver == 4:
                self._dg_flag("ipv4.fragment.duplicate", dg, frames)
            return
        self._dg_flag(f"{ip}.fragment.overlap", dg, frames)
        if dg.ver != 4:
            return
        entry = _conflict_entry(dg.frags)
        if entry is not None:
            self._dg_flag("ipv4.fragment.overlap_conflict", dg, frames)
            _keep_first(self.evidence.setdefault("ipv4.fragment.overlap_conflict", []), entry)

    def finish(self) -> None:
        """The end of the input: every open datagram is never-completed."""
        self._gone(self.open.drain(), evicted=False)

    def findings(self) -> list[Finding]:
        self.finish()
        return self.tally.findings({fid: {"datagrams": ev} for fid, ev in self.evidence.items()})

    def merge_disjoint(self, other: FragmentAudit, frame_offset: int = 0) -> None:
        """Add a finished audit of other datagrams (no reassembly key in common: fanout
        workers, live/run.py), its frame numbers shifted by `frame_offset`. A datagram's
        verdict depends only on its own key's fragments, so the union is what one audit
        of all the packets gives, but for the bounds (each part held its own MAX_OPEN,
        MAX_BYTES)."""
        assert not self.open and not other.open, "merge finished audits"
        self.tally.merge(other.tally, frame_offset)
        for fid, ev in other.evidence.items():
            mine = self.evidence.setdefault(fid, [])
            for e in ev:
                _keep_first(mine, {**e, "frames": [f + frame_offset for f in e["frames"]]})
        for fid, held in other.flagged.items():
            self.flagged.setdefault(fid, FlaggedKeys()).merge(held, frame_offset)
        self.now = max(self.now, other.now)


# One odd multiplier per 8-byte word of a key (odd multiples of the golden-ratio constant
# 2^64 / phi). Any odd constants would do: the hash only ever says "maybe equal".
_MIX = np.array([(0x9E3779B97F4A7C15 * (2 * j + 1)) % (1 << 64) for j in range(16)], np.uint64)


def _in_frame_order(
    parts: list[tuple[NDArray[np.uint8], Frags]],
) -> tuple[NDArray[np.uint8], Frags]:
    """One layer's fragments from several tables (a batch and the packets rebuilt from it)
    as one arrival order, frame order (each part is in frame order already), their data
    gathered into one buffer. One part, the usual case, is returned as it is."""
    if len(parts) == 1:
        return parts[0]
    size = np.concatenate([f.size for _, f in parts])
    joined = np.empty(int(size.sum()), dtype=np.uint8)
    at = 0
    for buf, f in parts:
        n = int(f.size.sum())
        _trains.gather(buf, f.data, f.size, joined[at : at + n])
        at += n
    cat = {k.name: np.concatenate([getattr(f, k.name) for _, f in parts]) for k in fields(Frags)}
    cat["data"] = np.cumsum(size) - size
    f = Frags(**cat)
    return joined, f.take(np.argsort(f.frames, kind="stable"))


def newest_kept(size: NDArray[np.int64], max_open: int, max_bytes: int) -> int:
    """How many of these new one-fragment datagrams (each holding `size` bytes, in arrival
    order) a table bounded to max_open datagrams and max_bytes (FRAG_COST charged on each)
    keeps, evicting the oldest as each comes: the newest that fit, the longest suffix."""
    newest_first = np.cumsum((size + FRAG_COST)[::-1])
    fits = int(np.searchsorted(newest_first, max_bytes, side="right"))
    return min(int(size.shape[0]), max_open, fits)


def key_hashes(keys: NDArray[np.void]) -> NDArray[np.uint64]:
    """A 64-bit hash of each key (_trains.hashes, with the _MIX multipliers). Equal keys
    hash equal; unequal ones almost never do, and a caller that sees two equal hashes
    compares the keys (group_keys)."""
    h = np.empty(keys.shape[0], dtype=np.uint64)
    rows = np.ascontiguousarray(keys).view(np.uint8).reshape(-1)
    _trains.hashes(rows, keys.dtype.itemsize, _MIX, h)
    return h


def key_bytes(keys: NDArray[np.void]) -> list[bytes]:
    """Each key as the bytes the open table is keyed by."""
    raw, w = keys.tobytes(), keys.dtype.itemsize
    return [raw[k : k + w] for k in range(0, len(raw), w)]


def all_new(keys: NDArray[np.void], h: NDArray[np.uint64], held: NDArray[np.void]) -> bool:
    """Whether a batch's keys (`h`: their key_hashes) are all distinct and none is open:
    the flood case, decided without grouping the keys. Exact: distinct hashes mean
    distinct keys, and an open key whose hash matches one of the batch's is compared byte
    for byte. Equal hashes among the batch's keys (a key twice, or a collision an attacker
    may craft) only say "not sure": the caller groups the keys, which decides."""
    if keys.shape[0] == 0:
        return False
    hs = np.sort(h)
    if (hs[1:] == hs[:-1]).any():
        return False
    if held.shape[0] == 0:
        return True
    hh = key_hashes(held)
    at = np.minimum(np.searchsorted(hs, hh), hs.shape[0] - 1)
    maybe = np.flatnonzero(hs[at] == hh)
    if maybe.shape[0] == 0:
        return True
    batch = set(key_bytes(keys))
    return not any(held[i].tobytes() in batch for i in maybe.tolist())


def group_keys(
    keys: NDArray[np.void], h: NDArray[np.uint64]
) -> tuple[NDArray[np.void], NDArray[np.int64], NDArray[np.uint64]]:
    """(the distinct keys, each key's index among them, the distinct keys' hashes), from
    the keys and their key_hashes `h`: what
    np.unique(keys, return_inverse=True) gives, the distinct keys in the order of their
    hashes rather than of their bytes, without sorting the keys themselves (a sort of
    108-byte keys cost more than the rest of the audit on a batch of fragment trains).
    Exact: keys whose hashes are equal are compared byte for byte, and a collision (two
    keys, one hash: chance, or an attacker's craft) falls back to sorting the keys."""
    n = keys.shape[0]
    order = np.argsort(h)  # the order among equal hashes does not matter
    hs = h[order]
    new = np.ones(n, dtype=np.bool_)
    new[1:] = hs[1:] != hs[:-1]
    again = np.flatnonzero(~new)  # a hash seen just before: the same key, or a collision
    rows = np.ascontiguousarray(keys).view(np.uint8).reshape(-1)
    if again.shape[0] and _trains.differ(rows, keys.dtype.itemsize, order[again], order[again - 1]):
        uniq, inv = np.unique(keys, return_inverse=True)
        return uniq, inv.reshape(-1), key_hashes(uniq)
    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return keys[order[new]], inv, hs[new]


def open_among(
    uniq: NDArray[np.void], hashes: NDArray[np.uint64], keys: NDArray[np.void]
) -> NDArray[np.bool_]:
    """Which of a batch's distinct keys (group_keys: with their hashes) are among the open
    `keys`:
    the open keys are looked up in the batch's, not the other way round, so the cost
    follows the bounded table, not the batch. An open key is compared byte for byte with
    every batch key of its hash."""
    held = np.zeros(uniq.shape[0], dtype=np.bool_)
    if keys.shape[0] == 0 or uniq.shape[0] == 0:
        return held
    order = np.argsort(hashes)
    hs = hashes[order]
    hk = key_hashes(keys)
    lo = np.searchsorted(hs, hk, side="left")
    hi = np.searchsorted(hs, hk, side="right")
    one = np.flatnonzero(hi - lo == 1)  # the usual case: compared all at once
    at = order[lo[one]]
    held[at[uniq[at] == keys[one]]] = True
    shared = np.flatnonzero(hi - lo > 1)  # a hash several batch keys share
    if shared.shape[0]:
        # Looked up by their bytes, not compared pair by pair: the hash is no secret, and
        # keys crafted to share one (two words moved by each other's multiplier) made
        # that loop open keys x batch keys, seconds a batch (helper-38).
        # The batch keys in those hashes' runs of `order`, each once (the runs of several
        # open keys may be one run): marked where a run starts and ends, summed.
        edge = np.zeros(hs.shape[0] + 1, dtype=np.int64)
        np.add.at(edge, lo[shared], 1)
        np.add.at(edge, hi[shared], -1)
        mine = order[np.cumsum(edge[:-1]) > 0]
        where = dict(zip(key_bytes(uniq[mine]), mine.tolist(), strict=True))
        for k in key_bytes(keys[shared]):
            j = where.get(k)
            if j is not None:
                held[j] = True
    return held


def observed(
    t: PacketTable, rows: NDArray[np.int64]
) -> tuple[NDArray[np.uint64], NDArray[np.uint16]]:
    """Where each row was seen, exactly, as (obs, side): obs is the pcapng interface id
    (high 32 bits) and what the link header names (low 32: the SLL2 or ipnet interface
    index, PKTAP's interface type and unit); side the link header's packet type or direction
    (low byte: SLL's packet type, PKTAP's direction flags, ipnet's hook) and the pcapng
    epb_flags direction (high byte). All 0 in a capture of one interface that says nothing
    of direction, the usual case."""
    b = t.batch
    obs = t.ifindex[rows].astype(np.uint64)
    if b.iface is not None:
        obs |= b.iface[rows].astype(np.uint64) << np.uint64(32)
    side = t.pkttype[rows].astype(np.uint16)
    if b.direction is not None:
        side |= b.direction[rows].astype(np.uint16) << np.uint16(8)
    return obs, side


class Seen(NamedTuple):
    """observed()'s two words taken apart again: the columns they came from."""

    iface: NDArray[np.uint32]  # RecordBatch.iface
    direction: NDArray[np.uint8]  # RecordBatch.direction
    ifindex: NDArray[np.uint32]  # PacketTable.ifindex
    pkttype: NDArray[np.uint8]  # PacketTable.pkttype


def seen_at(obs: NDArray[np.uint64], side: NDArray[np.uint16]) -> Seen:
    """The inverse of observed(): for packets rebuilt from fragments, which carry their
    datagram's (obs, side) but no link layer of their own."""
    return Seen(
        (obs >> np.uint64(32)).astype(np.uint32),
        (side >> np.uint16(8)).astype(np.uint8),
        (obs & np.uint64(0xFFFFFFFF)).astype(np.uint32),
        (side & np.uint16(0xFF)).astype(np.uint8),
    )


def fragment_keys(
    t: PacketTable, name: str, layer: IPLayer, rows: NDArray[np.int64]
) -> NDArray[np.void]:
    """The reassembly key of each fragment row, as one comparable byte string each."""
    return keyed(t, name, layer, rows)[0]


# KEY's fields in the order of _trains.c's `at` (K_*), and its columns (C_*).
KEY_ORDER = (
    "layer", "ver", "vlan1", "vlan2", "proto", "ident", "src4", "dst4", "src6", "dst6",
    "tkind", "tkey", "vni", "tsrc4", "tdst4", "tsrc6", "tdst6", "obs", "side",
)  # fmt: skip
_KEY_AT = np.array([_at(f) for f in KEY_ORDER], dtype=np.int64)


def keyed(
    t: PacketTable, name: str, layer: IPLayer, rows: NDArray[np.int64]
) -> tuple[NDArray[np.void], NDArray[np.uint64]]:
    """fragment_keys_numpy's keys, and their key_hashes, built in one pass (_trains.pack)."""
    b, o = t.batch, t.outer
    none8, none32 = np.zeros(0, np.uint8), np.zeros(0, np.uint32)
    cols = (
        layer.ver, t.vlan1, t.vlan2, t.ifindex, none32 if b.iface is None else b.iface,
        t.pkttype, none8 if b.direction is None else b.direction, layer.proto, layer.ident,
        layer.src4, layer.dst4, layer.src6, layer.dst6, t.tunnel_inner, t.gre_key, t.vni,
        o.src4, o.dst4, o.src6, o.dst6, o.ver,
    )  # fmt: skip
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    keys = np.empty(rows.shape[0], dtype=KEY)
    h = np.empty(rows.shape[0], dtype=np.uint64)
    raw = keys.view(np.uint8).reshape(-1)
    _trains.pack(rows, cols, name == "inner", _KEY_AT, KEY.itemsize, _MIX, raw, h)
    return keys.view(KEY_VOID).reshape(-1), h


def fragment_keys_numpy(
    t: PacketTable, name: str, layer: IPLayer, rows: NDArray[np.int64]
) -> NDArray[np.void]:
    """The definition of the keys keyed() builds: tests/test_fragment_keys.py compares
    the two on every capture they decode."""
    k = np.zeros(rows.shape[0], dtype=KEY)
    k["layer"] = 1 if name == "inner" else 0
    k["ver"] = layer.ver[rows]
    k["vlan1"] = t.vlan1[rows]
    k["vlan2"] = t.vlan2[rows]
    k["obs"], k["side"] = observed(t, rows)
    # IPv4 reassembly is keyed by protocol too (RFC 791 section 3.2); IPv6 is not.
    k["proto"] = np.where(layer.ver[rows] == 4, layer.proto[rows], 0)
    k["ident"] = layer.ident[rows]
    k["src4"], k["dst4"] = layer.src4[rows], layer.dst4[rows]
    # The IPv6 addresses of IPv6 rows only: an inner IPv4 layer under an IPv6 one (IPv4 in
    # IPv6 in IPv4) finds the IPv6 header's addresses in its columns, which ipv4.py does not
    # clear, and a key must not hold them in one batch and not in another. (The 16-byte
    # fields are also the costly ones to fill, a strided write each: none where no row is
    # IPv6, the usual case.)
    v6 = np.flatnonzero(layer.ver[rows] == 6)
    if v6.shape[0]:
        k["src6"][v6], k["dst6"][v6] = layer.src6[rows[v6]], layer.dst6[rows[v6]]
    if name == "inner":
        # Inside a tunnel the same inner addresses can recur in other tunnels.
        k["tkind"], k["tkey"], k["vni"] = (t.tunnel_inner[rows], t.gre_key[rows], t.vni[rows])
        k["tsrc4"], k["tdst4"] = t.outer.src4[rows], t.outer.dst4[rows]
        if (t.outer.ver[rows] == 6).any():
            k["tsrc6"], k["tdst6"] = t.outer.src6[rows], t.outer.dst6[rows]
    return k.view(KEY_VOID).reshape(-1)


def _conflict_entry(frags: list[Fragment]) -> dict[str, Any] | None:
    """The overlap_conflict evidence of a datagram (its fragments in arrival order): the
    policies grouped by the payload each builds, or None when they all build the same."""
    groups = [(names, data) for names, data in policy_groups(frags) if data is not None]
    if len(groups) < 2:
        return None
    return {
        "frames": [f.frame for f in frags][:MAX_FRAMES],
        "policies": [{"policies": names, "sha_prefix": _digest(data)} for names, data in groups]
        + [{"policies": ["linux"], "result": "discarded"}],
    }


def _keep_first(evidence: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    """Keep the MAX_EVIDENCE datagrams with the smallest first frames, in frame order: the
    same list whatever order datagrams end in (a batch end expires some, a later fragment
    completes others) and however partial audits are merged."""
    bisect.insort(evidence, entry, key=_evidence_order)
    del evidence[MAX_EVIDENCE:]


def _evidence_order(entry: dict[str, Any]) -> tuple[list[int], str]:
    """Frames first; two datagrams on the same frames (an outer and an inner train in
    the same packets) by what the policies made of them."""
    return entry["frames"], repr(entry["policies"])


def _only_duplicates(frags: list[Fragment]) -> bool:
    """Every overlap is an exact copy of another fragment (same offset, same bytes)."""
    unique = {(f.offset, f.data): f for f in frags}
    return not overlaps(list(unique.values()))


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:16]
