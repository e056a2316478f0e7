"""The fragment audit's key tests (checks/fragments.py): all_new (the flood path: whether
a batch's fragment keys are all distinct and none is open), group_keys and open_among,
decided from 64-bit hashes. A hash only ever says "maybe equal": colliding hashes must
change no verdict, only the path taken."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from netsleuth import craft
from netsleuth.capture import RecordBatch, open_capture
from netsleuth.checks import fragments
from netsleuth.checks.fragments import FragmentAudit, group_keys, key_bytes, open_among
from netsleuth.checks.layers import ip_layers
from netsleuth.craft.l3 import MF
from netsleuth.decode import decode
from netsleuth.decode.table import PacketTable
from netsleuth.errors import InputError

D = "198.51.100.7"


def frag(payload: bytes, off: int, more: bool, ident: int, src: str = "192.0.2.1") -> bytes:
    ip = craft.ipv4(src, D, payload, 17, ident=ident, frag_off=off, flags=MF if more else 0)
    return craft.ether(ip, 0x0800)


def lone(n: int, base: int = 0) -> list[bytes]:
    """n first fragments of n datagrams that never complete (a flood)."""
    return [
        frag(b"f" * 16, 0, True, ident=i, src=f"10.9.{(base + i) >> 8}.{i & 255}") for i in range(n)
    ]


def batches() -> list[list[bytes]]:
    """Floods, trains that finish in the next batch, a key twice in one batch, and a flood
    that meets an open key."""
    return [
        lone(300),
        [frag(b"a" * 16, 0, True, ident=9000), *lone(50, 1000)],
        [frag(b"b" * 16, 16, False, ident=9000), *lone(200, 2000)],
        [frag(b"c" * 16, 0, True, ident=9001), frag(b"c" * 16, 0, True, ident=9001)],
        [*lone(120, 3000), frag(b"d" * 16, 16, False, ident=9001)],
    ]


def audit_findings(max_open: int) -> list[tuple[str, str | None, int, tuple[int, ...]]]:
    audit = FragmentAudit(max_open=max_open)
    frame = 0
    for packets in batches():
        b = RecordBatch.from_packets(packets)
        b.frame[:] = np.arange(frame + 1, frame + 1 + len(packets))
        frame += len(packets)
        audit.observe(decode(b))
    return [(f.id, f.layer, f.count, f.packets) for f in audit.findings()]


@pytest.mark.parametrize("max_open", [4096, 150])
def test_colliding_hashes_change_no_verdict(max_open: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real = audit_findings(max_open)
    assert ("fragment.evicted" in {f[0] for f in real}) == (max_open == 150)
    # Every key hashes the same: every batch takes the sorting path.
    monkeypatch.setattr(fragments, "key_hashes", lambda keys: np.zeros(keys.shape[0], np.uint64))
    real_keyed = fragments.keyed

    def keyed(*args: Any) -> tuple[np.ndarray, np.ndarray]:
        keys = real_keyed(*args)[0]
        return keys, np.zeros(keys.shape[0], np.uint64)

    monkeypatch.setattr(fragments, "keyed", keyed)
    assert audit_findings(max_open) == real


def keys_of(packets: list[bytes]) -> np.ndarray:
    t = decode(RecordBatch.from_packets(packets))
    rows = np.flatnonzero(t.outer.is_frag)
    return fragments.fragment_keys(t, "outer", t.outer, rows)


def all_new(keys: np.ndarray, opened: list[bytes]) -> bool:
    held = np.frombuffer(b"".join(opened), dtype=keys.dtype)
    return fragments.all_new(keys, fragments.key_hashes(keys), held)


def test_all_new_says_no_for_a_repeated_or_an_open_key(monkeypatch: pytest.MonkeyPatch) -> None:
    flood = keys_of(lone(40))
    assert all_new(flood, [])
    assert not all_new(keys_of([*lone(40), lone(1)[0]]), [])  # the first key twice
    opened = key_bytes(flood[7:8])
    assert not all_new(flood, opened)
    assert all_new(keys_of(lone(40, 5000)), opened)  # other keys, one open elsewhere
    assert not all_new(flood[:0], [])
    monkeypatch.setattr(fragments, "key_hashes", lambda keys: np.zeros(keys.shape[0], np.uint64))
    assert not all_new(flood, [])  # distinct keys, equal hashes: not sure, so no
    other = key_bytes(keys_of(lone(1, 5000)))
    assert all_new(flood[:1], other)  # an open key of the same hash is compared: not it


@pytest.mark.parametrize("collide", [False, True])
def test_group_keys_groups_as_sorting_does(collide: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The groups np.unique finds, whether the hashes tell the keys apart or all collide
    (then the keys are sorted); open_among finds exactly the open keys either way."""
    packets = [*lone(30), *lone(10), *lone(5, 700), lone(1)[0]]  # keys 0-9 twice, 0 thrice
    keys = keys_of(packets)
    if collide:
        monkeypatch.setattr(fragments, "key_hashes", lambda k: np.zeros(k.shape[0], np.uint64))
    uniq, inv, hashes = group_keys(keys, fragments.key_hashes(keys))
    assert uniq.shape[0] == 35
    assert (uniq[inv] == keys).all()  # each key's group holds that key
    expected = np.unique(keys, return_inverse=True)[1].reshape(-1)
    same = expected[:, None] == expected[None, :]
    assert ((inv[:, None] == inv[None, :]) == same).all()  # the same partition
    opened = np.concatenate([keys[3:4], keys_of(lone(1, 9000))])
    held = open_among(uniq, hashes, opened)
    assert held.sum() == 1 and (uniq[held] == keys[3]).all()


@pytest.mark.parametrize("collide", [False, True])
def test_outer_keys_grouped_for_a_subset_as_sorting_does(
    collide: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outer fragments' keys, grouped once (OuterKeys, shared by the tunnel reassembly
    and the audit) and restricted to some of the rows: the partition np.unique finds among
    those rows' keys, numbered 0.. without gaps, whether hashes collide or not. The same
    packets seen on a second interface are other datagrams; a row holding no outer
    fragment is refused."""
    packets = [*lone(30), *lone(10), *lone(5, 700), lone(1)[0]]
    whole = craft.ether(craft.ipv4("192.0.2.1", D, b"x" * 16, 17), 0x0800)
    n = len(packets) + 1
    batch = dataclasses.replace(
        RecordBatch.from_packets([*packets, whole] * 2),
        iface=np.repeat(np.array([0, 7], np.uint32), n),
        direction=np.ones(2 * n, np.uint8),
    )
    t = decode(batch)
    if collide:
        made = fragments.keyed
        monkeypatch.setattr(
            fragments, "keyed", lambda *a: (made(*a)[0], np.zeros(a[3].shape[0], np.uint64))
        )
    outer = fragments.OuterKeys(t)
    assert outer.rows.tolist() == [r for r in range(2 * n) if r % n != n - 1]
    assert not outer.keyed[1].any() if collide else outer.keyed[1].all()
    everything = outer.grouped()
    assert everything[0].shape[0] == 70  # 35 keys a side
    for rows in (outer.rows, outer.rows[::3], outer.rows[outer.rows >= n], outer.rows[:1]):
        uniq, inv, hashes = outer.grouped(outer.at(rows))
        mine = fragments.fragment_keys(t, "outer", t.outer, rows)
        expected = np.unique(mine, return_inverse=True)[1].reshape(-1)
        assert ((inv[:, None] == inv[None, :]) == (expected[:, None] == expected[None, :])).all()
        assert sorted(set(inv.tolist())) == list(range(uniq.shape[0]))
        assert (uniq[inv] == mine).all() and hashes.shape == (uniq.shape[0],)
    assert outer.at(outer.rows) is None  # all of them: the grouping as it is
    with pytest.raises(ValueError, match="no outer fragment"):
        outer.at(np.array([n - 1]))


def numpy_hashes(rows: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """The hash _trains.hashes computes (row_hash), written over NumPy words: each 8-byte
    word of a zero-padded row times its constant, summed, then mixed."""
    n, w = rows.shape
    words = np.zeros((n, -(-w // 8) * 8), dtype=np.uint8)
    words[:, :w] = rows
    cols = words.view(np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    for j in range(cols.shape[1]):
        h += cols[:, j] * mix[j]
    h ^= h >> np.uint64(31)
    h *= mix[0]
    return h ^ (h >> np.uint64(29))


@pytest.mark.parametrize("width", [1, 7, 8, 9, 16, 108, 127, 128])
def test_compiled_key_hashes_equal_the_numpy_words(width: int) -> None:
    rng = np.random.default_rng(width)
    rows = rng.integers(0, 256, size=(500, width), dtype=np.uint8)
    rows[:3] = 0  # zero keys and repeated keys hash alike
    keys = rows.view(np.dtype((np.void, width))).reshape(-1)
    got = fragments.key_hashes(keys)
    assert (got == numpy_hashes(rows, fragments._MIX)).all()
    assert got[0] == got[1] == got[2]
    assert len(set(got[3:].tolist())) == len({r.tobytes() for r in rows[3:]})


def test_compiled_key_hashes_refuse_what_does_not_fit() -> None:
    from netsleuth.checks import _trains

    mix, keys = fragments._MIX, np.zeros(12, dtype=np.uint8)
    out = np.zeros(3, dtype=np.uint64)
    assert _trains.hashes(keys, 4, mix, out) == 3
    for width in (0, -4, 5, 8 * mix.shape[0] + 4):  # none, negative, not dividing, too wide
        with pytest.raises(ValueError, match="width"):
            _trains.hashes(keys, width, mix, out)
    with pytest.raises(ValueError, match="one uint64 a key"):
        _trains.hashes(keys, 6, mix, out)  # two keys, three outputs
    with pytest.raises(ValueError, match="8-byte integers"):
        _trains.hashes(keys, 4, mix, np.zeros(6, dtype=np.int32))
    both = np.zeros(16, dtype=np.uint64)
    with pytest.raises(ValueError, match="share memory"):
        _trains.hashes(both.view(np.uint8), 64, mix, both[:2])


def test_compiled_differ_compares_whole_rows_and_refuses_stray_indexes() -> None:
    from netsleuth.checks import _trains

    rows = np.zeros((4, 108), dtype=np.uint8)
    rows[1, 107] = 1  # row 1 differs from row 0 in its last byte only
    rows[3, 0] = 1  # row 3 in its first
    flat = rows.reshape(-1)

    def idx(*v: int) -> NDArray[np.int64]:
        return np.array(v, dtype=np.int64)

    assert _trains.differ(flat, 108, idx(0, 2), idx(2, 0)) == 0
    assert _trains.differ(flat, 108, idx(0, 2), idx(2, 1)) == 1
    assert _trains.differ(flat, 108, idx(3), idx(0)) == 1
    assert _trains.differ(flat, 108, idx(), idx()) == 0
    for a, b in ((idx(4), idx(0)), (idx(0), idx(-1))):
        with pytest.raises(IndexError):
            _trains.differ(flat, 108, a, b)
    with pytest.raises(IndexError):
        _trains.differ(flat, 100, idx(0), idx(1))  # a width that does not divide the rows
    with pytest.raises(ValueError, match="sizes"):
        _trains.differ(flat, 108, idx(0, 1), idx(1))


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_by_group_is_a_stable_sort(n: int) -> None:
    rng = np.random.default_rng(n)
    group = rng.integers(0, max(n // 3, 1), size=n)
    assert (fragments.by_group(group) == np.argsort(group, kind="stable")).all()
    huge = group + (1 << 61)  # past what (group, position) fits in: the plain stable sort
    assert (fragments.by_group(huge) == np.argsort(huge, kind="stable")).all()


def test_an_inner_ipv4_key_does_not_depend_on_the_batch_around_it() -> None:
    """IPv4 in IPv6 in IPv4: the inner IPv4 layer's columns still hold the IPv6 header's
    addresses (ipv4.py writes the IPv4 ones only). Its key holds none of them, whether or
    not another fragment of its batch is IPv6; when it held them only in batches with an
    IPv6 fragment (session 14, a fill skipped for speed), a datagram whose fragments fell
    in two such batches was two keys: a false ipv4.fragment.incomplete."""

    def six_in_four(payload: bytes, nh: int) -> bytes:
        v6 = craft.ipv6("2001:db8::1", "2001:db8::2", payload, nh)
        return craft.ether(craft.ipv4("203.0.113.1", "203.0.113.2", v6, 41), 0x0800)

    first, last = craft.fragment_ipv4("10.1.0.1", D, bytes(200), 17, sizes=[96, 0], ident=77)
    v6_frag = craft.ipv6_frag(bytes(64), 17, offset=0, more=True, ident=5)
    other = six_in_four(v6_frag, 44)
    alone = decode(RecordBatch.from_packets([six_in_four(first, 4)]))
    beside = decode(RecordBatch.from_packets([six_in_four(last, 4), other]))
    assert (
        beside.inner_raw.ver.tolist() == [4, 6] and beside.inner_raw.src6[0].any()
    )  # the stale bytes
    one = fragments.fragment_keys(alone, "inner", alone.inner_raw, np.array([0]))
    two = fragments.fragment_keys(beside, "inner", beside.inner_raw, np.array([0, 1]))
    key = np.frombuffer(one.tobytes(), dtype=fragments.KEY)
    assert not key["src6"].any() and not key["dst6"].any()
    same = np.frombuffer(two.tobytes(), dtype=fragments.KEY)
    assert same[0]["ident"] == key[0]["ident"] == 77
    assert same[0].tobytes() == key[0].tobytes()
    audit = FragmentAudit()
    audit.observe(alone)
    audit.observe(beside)
    audit.finish()
    assert {f.id for f in audit.findings()} == {"ipv6.fragment.incomplete"}


def test_seen_at_takes_observed_apart() -> None:
    """Rebuilt packets get their datagram's capture point back through seen_at: the exact
    columns observed() packed, at their widest values."""
    packets = lone(4)
    batch = dataclasses.replace(
        RecordBatch.from_packets(packets),
        iface=np.array([0, 1, 0xFFFFFFFF, 7], np.uint32),
        direction=np.array([0, 1, 2, 3], np.uint8),
    )
    t = decode(batch)
    t.ifindex[:] = [0, 0xFFFFFFFF, 5, 1]
    t.pkttype[:] = [0, 4, 0xFF, 1]
    rows = np.arange(4)
    seen = fragments.seen_at(*fragments.observed(t, rows))
    assert seen.iface.tolist() == [0, 1, 0xFFFFFFFF, 7]
    assert seen.direction.tolist() == [0, 1, 2, 3]
    assert seen.ifindex.tolist() == [0, 0xFFFFFFFF, 5, 1]
    assert seen.pkttype.tolist() == [0, 4, 0xFF, 1]


def compare_keys(t: PacketTable, rng: np.random.Generator) -> int:
    """keyed() against fragment_keys_numpy (the definition) on every IP row of both layers,
    and on a shuffled subset with repeats (rows in any order); and its hashes against
    key_hashes of the definition's keys. Returns the rows compared."""
    n = 0
    for name, layer, present in ip_layers(t):
        for rows in (np.flatnonzero(present), rng.choice(t.n, size=min(t.n, 64))):
            keys, h = fragments.keyed(t, name, layer, rows)
            want = fragments.fragment_keys_numpy(t, name, layer, rows)
            assert keys.tobytes() == want.tobytes(), name
            assert np.array_equal(h, fragments.key_hashes(want))
            n += rows.shape[0]
    return n


def test_compiled_keys_are_the_definition_s_on_the_corpus(corpus: Path) -> None:
    rng = np.random.default_rng(3)
    compared = 0
    for path in sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng")):
        try:
            batches = list(open_capture(str(path)).batches())
        except InputError:  # unreadable files are test_corpus.py's business
            continue
        for batch in batches:
            compared += compare_keys(decode(batch), rng)
    assert compared > 10_000


def test_compiled_keys_through_tunnels_interfaces_and_directions() -> None:
    """Inner layers under IPv4 and IPv6 tunnels (GRE keys, VXLAN VNIs, IPv4 in IPv6 in
    IPv4), VLAN tags, and a capture point from every source: pcapng interfaces and
    directions, a cooked header's interface index and packet type."""
    s6, d6 = "2001:db8::1", "2001:db8::2"
    inner = craft.fragment_ipv4(
        "10.0.0.1",
        "10.0.0.2",
        craft.udp("10.0.0.1", "10.0.0.2", 1, 2, bytes(64)),
        17,
        sizes=[32, 40],
        ident=5,
    )
    v6in = craft.ipv6(s6, d6, craft.ipv6_frag(bytes(40), 17, offset=0, more=True, ident=7), 44)
    frames = []
    for f in [*inner, v6in]:
        ethertype = 0x86DD if f[0] >> 4 == 6 else 0x0800
        gre4 = craft.ipv4("192.0.2.1", "192.0.2.2", craft.gre(f, ethertype, key=9), 47)
        gre6 = craft.ipv6(s6, d6, craft.gre(f, ethertype, key=10), 47)
        vx = craft.vxlan(craft.ether(f, ethertype), vni=77)
        udp = craft.ipv4(
            "192.0.2.1", "192.0.2.2", craft.udp("192.0.2.1", "192.0.2.2", 4000, 4789, vx), 17
        )
        nested = craft.ipv4(
            "192.0.2.3", "192.0.2.4", craft.ipv6(s6, d6, f, 4 if ethertype == 0x0800 else 41), 41
        )
        frames += [craft.ether(gre4, 0x0800), craft.ether(gre6, 0x86DD), craft.ether(udp, 0x0800)]
        frames += [craft.ether(craft.dot1q(nested, 0x0800, vid=12), 0x8100)]
    batch = RecordBatch.from_packets(frames)
    rng = np.random.default_rng(4)
    assert compare_keys(decode(batch), rng) > len(frames)
    n = len(frames)
    pointed = dataclasses.replace(
        batch,
        iface=np.arange(n, dtype=np.uint32) % 3,
        direction=(np.arange(n) % 3).astype(np.uint8),
    )
    t = decode(pointed)
    t.ifindex[:] = np.arange(n, dtype=np.uint32) * 7
    t.pkttype[:] = np.arange(n, dtype=np.uint8) % 5
    assert compare_keys(t, rng) > len(frames)


def test_compiled_keys_refuse_what_does_not_fit() -> None:
    t = decode(RecordBatch.from_packets(lone(4)))
    rows = np.flatnonzero(t.outer.is_frag)
    with pytest.raises(IndexError):
        fragments.keyed(t, "outer", t.outer, np.array([0, t.n], dtype=np.int64))
    with pytest.raises(IndexError):
        fragments.keyed(t, "outer", t.outer, np.array([-1], dtype=np.int64))
    t.vlan1 = t.vlan1.astype(np.int32)  # a column of the wrong type
    with pytest.raises(ValueError, match="2-byte integers"):
        fragments.keyed(t, "outer", t.outer, rows)


def colliding_fragments(n: int, base: int = 0) -> list[bytes]:
    """IPv6 first fragments whose keys all share one hash: the hash is a sum of each key
    word times its constant (row_hash), so moving one address word up by another word's
    constant and that word down by this one's leaves it (helper-38)."""
    mix = [int(x) for x in fragments._MIX]
    src, dst = bytearray(16), bytearray(16)
    src[:2], dst[:2] = b"\x20\x01", b"\x20\x01"
    # Key words 3 and 5 are src6[5:13] and dst6[5:13] (KEY's layout: checked below).
    assert (fragments._at("src6") + 5, fragments._at("dst6") + 5) == (24, 40)
    out = []
    for a in range(base, base + n):
        s, d = bytearray(src), bytearray(dst)
        s[5:13] = (a * mix[5] % (1 << 64)).to_bytes(8, "little")
        d[5:13] = (-a * mix[3] % (1 << 64)).to_bytes(8, "little")
        frag = craft.ipv6_frag(bytes(64), 17, offset=0, more=True, ident=7)
        hdr = b"".join([bytes.fromhex("60000000"), struct.pack("!HBB", len(frag), 44, 64)])
        out.append(craft.ether(hdr + bytes(s) + bytes(d) + frag, 0x86DD))
    return out


def test_open_keys_are_found_among_colliding_batch_keys() -> None:
    """Thousands of batch keys of one hash, and open keys of that hash (some among them,
    some not): each batch key is open exactly when its bytes are an open key's."""
    t = decode(RecordBatch.from_packets(colliding_fragments(3000)))
    rows = np.flatnonzero(t.outer.is_frag)
    keys, h = fragments.keyed(t, "outer", t.outer, rows)
    assert len(set(h.tolist())) == 1 and len(set(key_bytes(keys))) == 3000
    other = decode(RecordBatch.from_packets(colliding_fragments(500, base=2800)))
    opened = fragments.keyed(other, "outer", other.outer, np.flatnonzero(other.outer.is_frag))[0]
    got = open_among(keys, h, opened)
    want = set(key_bytes(opened))
    assert got.tolist() == [k in want for k in key_bytes(keys)]
    assert int(got.sum()) == 200
