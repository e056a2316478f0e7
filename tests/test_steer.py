"""The steering models: incident 3's story, and the flow dissector rules one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.craft.l2 import ether
from netsleuth.craft.l3 import ipv4, ipv6
from netsleuth.craft.l4 import udp
from netsleuth.craft.mix import mixed_capture
from netsleuth.craft.tunnel import gre
from netsleuth.decode import decode
from netsleuth.steering import fields
from netsleuth.steering.compare import scenarios
from netsleuth.steering.model import (
    NicModel,
    RpsModel,
    dissector_hash,
    dissector_words,
    flow_id,
    flow_id_numpy,
    mix64,
    rss_hash,
    rss_hash_numpy,
)
from netsleuth.steering.run import steer, steer_many
from netsleuth.steering.tally import Tally
from netsleuth.steering.toeplitz import MICROSOFT_KEY, SYMMETRIC_KEY, Toeplitz
from tests.clirun import invoke

CPUS = tuple(range(8))


def cap(tmp_path: Path, name: str, frames: list[tuple[int, bytes]]) -> str:
    path = tmp_path / name
    with open(path, "wb") as fh:
        write_pcap(fh, frames)
    return str(path)


def test_pptp_one_cpu_before_4_10_spread_after(tmp_path: Path) -> None:
    path = cap(tmp_path, "pptp.pcap", incidents.incident3_pptp())
    old = steer([path], NicModel(queues=8), RpsModel((4, 9), CPUS))
    assert old.cpus is not None
    assert sorted(old.cpus.packets)[-1] == 4000  # one CPU takes everything
    assert int(np.count_nonzero(old.cpus.packets)) == 1
    collapse = [
        f for f in old.findings if f.id == "steer.flow_key_collapse" and f.evidence["side"] == "rps"
    ]
    assert "GRE v1 (PPTP) is not dissected before Linux 4.10" in collapse[0].summary
    assert {f.id for f in old.findings} >= {"steer.rps_imbalance", "steer.rss_imbalance"}
    new = steer([path], NicModel(queues=8), RpsModel((4, 10), CPUS))
    assert new.cpus is not None
    assert new.cpus.max_over_mean() < 1.3 and new.rps_keys >= 2000
    assert "steer.rps_imbalance" not in {f.id for f in new.findings}


def test_gre_outer_only_nic_one_queue_inner_aware_spreads(tmp_path: Path) -> None:
    path = cap(tmp_path, "gre.pcap", incidents.incident3_gre_v0())
    outer = steer([path], NicModel(queues=8, parse="outer"), None)
    assert int(np.count_nonzero(outer.queues.packets)) == 1 and outer.rss_keys == 1
    assert "gre" in next(f.summary for f in outer.findings if f.id == "steer.flow_key_collapse")
    inner = steer([path], NicModel(queues=8, parse="inner"), None)
    assert inner.queues.max_over_mean() < 1.3 and inner.rss_keys == 2000
    assert inner.findings == []


def test_rps_reuses_an_l4_nic_hash_and_recomputes_an_l3_one(tmp_path: Path) -> None:
    frames = [
        (
            i,
            craft.ether(
                craft.ipv4(
                    "10.0.0.1", "10.0.0.2", craft.tcp("10.0.0.1", "10.0.0.2", 1000 + i, 80), 6
                ),
                0x0800,
            ),
        )
        for i in range(500)
    ]
    path = cap(tmp_path, "tcp.pcap", frames)
    l4 = steer([path], NicModel(queues=4), RpsModel((5, 10), (0, 1, 2, 3)))
    l3 = steer([path], NicModel(queues=4, l4=frozenset()), RpsModel((5, 10), (0, 1, 2, 3)))
    assert l4.rss_keys == l4.rps_keys == 500  # the NIC's L4 hash, reused
    assert l3.rss_keys == 1 and l3.rps_keys == 500  # L3-only: recomputed with ports


def test_dissector_key_rules() -> None:
    a, b = "2001:db8::1", "2001:db8::2"

    def v6(src: str, dst: str, sport: int, dport: int, flow: int) -> bytes:
        seg = craft.udp(src, dst, sport, dport, b"x")
        return craft.ether(craft.ipv6(src, dst, seg, 17, flow=flow), 0x86DD)

    def v4frag(off: int) -> bytes:
        ip = craft.ipv4(
            "10.0.0.1",
            "10.0.0.2",
            craft.udp("10.0.0.1", "10.0.0.2", 5, 6, bytes(16)),
            17,
            ident=3,
            flags=1 if off == 0 else 0,
            frag_off=off,
        )
        return craft.ether(ip, 0x0800)

    def v4tcp(src: str, dst: str, sport: int, dport: int) -> bytes:
        seg = craft.tcp(src, dst, sport, dport, b"")
        return craft.ether(craft.ipv4(src, dst, seg, 6), 0x0800)

    frames = [
        v6(a, b, 1, 2, 0),
        v6(b, a, 2, 1, 0),  # symmetric
        v6(a, b, 1, 2, 77),
        v6(a, b, 3, 4, 77),  # flow label: ports ignored
        v4frag(0),
        v4frag(24),  # fragments: no ports
        v4tcp("10.0.0.9", "10.0.0.3", 5, 7),
        v4tcp("10.0.0.3", "10.0.0.9", 7, 5),  # symmetric
        v4tcp("10.0.0.3", "10.0.0.3", 9, 8),  # equal addresses: the lower port first
    ]
    words = dissector_words(decode(RecordBatch.from_packets(frames)), (5, 10))
    k = [tuple(int(w[i]) for w in words) for i in range(len(frames))]
    assert k[0] == k[1]
    assert k[2] == k[3] and k[2] != k[0]
    assert k[4] == k[5]
    assert k[6] == k[7]
    # The lower endpoint first: 10.0.0.3 (as a 128-bit number: hi 0, lo 0x0A000003), port 7.
    assert k[6][:4] == (0, 0x0A000003, 0, 0x0A000009)
    assert k[6][4] == (7 << 48) | (5 << 32) | 6
    assert k[8][4] == (8 << 48) | (9 << 32) | 6


def test_steer_json_contract(tmp_path: Path) -> None:
    path = cap(tmp_path, "pptp.pcap", incidents.incident3_pptp(flows=200))
    model = ("--kernel", "4.9", "--rps-cpus", "0-3", "--queues", "4")
    doc = invoke("steer", path, "--format", "json", *model, code=0).json()
    assert doc["command"] == "steer"
    assert [q["queue"] for q in doc["rss"]["queues"]] == [0, 1, 2, 3]
    assert sum(q["packets"] for q in doc["rss"]["queues"]) == 400
    assert [c["cpu"] for c in doc["rps"]["cpus"]] == [0, 1, 2, 3]
    assert doc["rps"]["max_over_mean"] == 4.0
    assert doc["config"]["rps"]["kernel"] == "4.9"
    assert "RFS is not modelled" in doc["notes"]
    no_rps = invoke("steer", path, "--format", "json", code=0).json()
    assert "rps" not in no_rps
    bad = invoke("steer", path, "--rps-cpus", "x-y", code=2)
    assert "not a CPU list" in bad.err


def test_compare_shows_which_change_fixes_incident_3(tmp_path: Path) -> None:
    pptp = cap(tmp_path, "pptp.pcap", incidents.incident3_pptp())
    gre = cap(tmp_path, "gre.pcap", incidents.incident3_gre_v0())
    res = invoke(
        "steer", "--compare", "--queues", "8", "--kernel", "5.15", "--format", "json", pptp, code=0
    )
    rows = {(r["nic"], r["rps"]): r for r in res.json()["compare"]}
    assert len(rows) == 6
    # PPTP: no NIC spreads it (PPTP parsing is off); RPS does only after 4.10.
    assert rows[("outer", "Linux 4.9")]["cpus_busy"] == 1
    assert rows[("outer", "Linux 5.15")]["cpus_busy"] == 8
    assert rows[("outer", "off")]["cpu_max_over_mean"] is None
    assert {r["queues_busy"] for r in rows.values()} == {1}
    res = invoke("steer", "--compare", "--queues", "8", "--format", "json", gre, code=0)
    rows = {(r["nic"], r["rps"]): r for r in res.json()["compare"]}
    # GRE v0: an inner-aware NIC spreads it over every queue; outer-only hashing does not.
    assert rows[("outer", "off")]["queues_busy"] == 1
    assert rows[("inner", "off")]["queues_busy"] == 8
    assert rows[("inner", "off")]["queue_max_over_mean"] < 1.5


def test_heaviest_flows_name_the_elephant(tmp_path: Path) -> None:
    def frame(src: str, sport: int) -> bytes:
        seg = craft.tcp(src, "198.51.100.7", sport, 443, b"x" * 20, flags="PA")
        return craft.ether(craft.ipv4(src, "198.51.100.7", seg, 6), 0x0800)

    frames = [frame("192.0.2.9", 40000)] * 300
    frames += [frame(f"203.0.113.{i}", 1000 + i) for i in range(1, 101)]
    path = cap(tmp_path, "elephant.pcap", [(i * 1000, f) for i, f in enumerate(frames)])
    doc = invoke("steer", "--format", "json", path, code=0).json()
    top = doc["flows"]["heaviest"]
    assert doc["flows"]["distinct"] == 101 and len(top) == 10
    assert top[0] == {
        "src": "192.0.2.9",
        "dst": "198.51.100.7",
        "sport": 40000,
        "dport": 443,
        "proto": 6,
        "packets": 300,
        "bytes": 300 * len(frames[0]),
        "share": 0.75,
    }
    assert all(f["packets"] == 1 for f in top[1:])
    assert "steer.elephant_flow" in {f["id"] for f in doc["findings"]}


def _mix64_reference(words: list[int], seed: int) -> int:
    """_mix64.c's algorithm in plain Python integers (the documented steps, nothing shared)."""
    mask = (1 << 64) - 1
    h = (seed * 0x9E3779B97F4A7C15) & mask
    for w in words:
        h ^= w
        h = (h * 0xFF51AFD7ED558CCD) & mask
        h ^= h >> 32
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & mask
    return h ^ (h >> 33)


def test_mix64_matches_the_plain_integer_definition() -> None:
    rng = np.random.default_rng(7)
    for k in (1, 5, 6):
        # 150 rows: more than one block of the C loop, and not a multiple of it.
        cols = [rng.integers(0, 2**64, 150, dtype=np.uint64) for _ in range(k)]
        got = mix64(cols, 0x5EED)
        want = [_mix64_reference([int(c[i]) for c in cols], 0x5EED) for i in range(150)]
        assert got.tolist() == want
    assert mix64([np.zeros(0, np.uint64)], 1).shape == (0,)


def test_compare_in_one_pass_equals_separate_runs(tmp_path: Path) -> None:
    path = cap(tmp_path, "pptp.pcap", incidents.incident3_pptp(flows=300))
    nic = NicModel(queues=8)
    models = scenarios(nic, CPUS, (5, 15), 7)
    together = steer_many([path], models)
    for (m_nic, m_rps), r in zip(models, together, strict=True):
        alone = steer([path], m_nic, m_rps)
        assert r.queues.packets.tolist() == alone.queues.packets.tolist()
        assert r.rss_keys == alone.rss_keys and r.rps_keys == alone.rps_keys
        if m_rps is not None:
            assert r.cpus is not None and alone.cpus is not None
            assert r.cpus.packets.tolist() == alone.cpus.packets.tolist()
    assert together[0].distinct_flows == 300


def test_tally_counts_per_key_across_growth() -> None:
    """Packets and bytes per key against a dict, with the table regrown many times (from
    8 records) and keys that are small integers, 0 and 2^64-1 (no sentinel key value)."""
    t = Tally(capacity=8)
    rng = np.random.default_rng(3)
    want: dict[int, list[int]] = {}
    order: list[int] = []
    for _ in range(60):
        keys = rng.integers(0, 3000, 97).astype(np.uint64)
        keys[:2] = [0, 2**64 - 1]
        sizes = rng.integers(60, 1500, 97)
        new = t.add(keys, sizes)
        fresh = []
        for i, (k, b) in enumerate(zip(keys.tolist(), sizes.tolist(), strict=True)):
            if k not in want:
                want[k] = [0, 0]
                order.append(k)
                fresh.append(i)
            want[k][0] += 1
            want[k][1] += b
        assert new.tolist() == fresh
    assert len(t) == len(want) > 2000
    assert t.keys().tolist() == order
    assert t.packets[: len(t)].tolist() == [want[k][0] for k in order]
    assert t.bytes[: len(t)].tolist() == [want[k][1] for k in order]
    # A distinct count (no per-key counts) of the same keys agrees.
    d = Tally(counts=False, capacity=2)
    for k in order:
        d.add(np.array([k, k], dtype=np.uint64), np.zeros(2, dtype=np.int64))
    assert len(d) == len(order) and d.keys().tolist() == order


def _ipv6_in_gre(n: int) -> list[bytes]:
    """IPv4/GRE frames carrying IPv6/UDP, each with its own inner addresses and port."""
    out = []
    for k in range(n):
        s6, d6 = f"2001:db8::{k + 1:x}", f"2001:db8:1::{k + 7:x}"
        inner = ipv6(s6, d6, udp(s6, d6, 1000 + k, 53, b"q"), 17)
        out.append(ether(ipv4("198.51.100.1", "198.51.100.2", gre(inner, 0x86DD), 47), 0x0800))
    return out


def test_compiled_field_selection_equals_its_numpy_definition() -> None:
    """fields.select (_fields.c) against select_numpy on a real table: the benchmark mix
    (IPv4, IPv6, GRE, PPTP, IPIP, VXLAN, fragments, STP) and the incident-3 captures, for
    the all-outer, the innermost and a random layer choice."""
    frames = [f for _, f in mixed_capture(6000, seed=5)]
    frames += [f for _, f in incidents.incident3_pptp(flows=40)]
    frames += [f for _, f in incidents.incident3_gre_v0(flows=40)]
    frames += _ipv6_in_gre(30)  # inner 128-bit addresses
    t = decode(RecordBatch.from_packets(frames))
    deep = t.nip >= 2
    assert 0.2 < deep.mean() < 0.8 and 6 in t.inner_raw.ver and 6 in t.outer.ver
    rng = np.random.default_rng(9)
    for mask in (np.zeros(t.n, dtype=np.bool_), deep, deep & (rng.random(t.n) < 0.5)):
        got, want = fields.select(t, mask), fields.select_numpy(t, mask)
        for name in fields.Fields.__dataclass_fields__:
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_compiled_rss_hash_equals_toeplitz_by_columns() -> None:
    """model.rss_hash (_toeplitz.c) against rss_hash_numpy (Toeplitz.hash_columns, which the
    Microsoft vectors pin) on a real table, NIC outer and inner, l4 on and off per packet,
    both keys."""
    frames = [f for _, f in mixed_capture(4000, seed=8)]
    frames += _ipv6_in_gre(30)
    t = decode(RecordBatch.from_packets(frames))
    rng = np.random.default_rng(4)
    for key in (MICROSOFT_KEY, SYMMETRIC_KEY):
        tz = Toeplitz(key)
        for f in (fields.select(t, np.zeros(t.n, bool)), fields.select(t, t.nip >= 2)):
            assert {0, 4, 6} <= set(f.ver.tolist())
            for l4 in (f.has_ports, f.has_ports & (rng.random(t.n) < 0.5)):
                got, want = rss_hash(tz, f, l4), rss_hash_numpy(tz, f, l4)
                assert got.dtype == want.dtype and np.array_equal(got, want)
                assert (got[f.ver == 0] == 0).all() and np.unique(got).shape[0] > 500


def test_compiled_dissector_and_flow_hashes_equal_their_definitions() -> None:
    """model.dissector_hash and flow_id (_mix64.c) against mix64 of dissector_words and of
    the flow words, on the mix and incident 3 (GRE keys, PPTP call ids, IPv6 flow labels,
    fragments), for a kernel before and after GRE v1 dissection."""
    frames = [f for _, f in mixed_capture(4000, seed=6)]
    frames += [f for _, f in incidents.incident3_pptp(flows=30)]
    frames += [f for _, f in incidents.incident3_gre_v0(flows=30)]
    for k in range(40):  # IPv6 with and without a flow label, both directions
        s6, d6 = f"2001:db8::{k % 7 + 1:x}", f"2001:db8::{k % 5 + 1:x}"
        seg = udp(s6, d6, 1000 + k % 3, 1000 + k % 4, b"q")
        frames.append(ether(ipv6(s6, d6, seg, 17, flow=(k % 2) * (k + 1)), 0x86DD))
    t = decode(RecordBatch.from_packets(frames))
    assert (t.outer.flow_label[t.outer.ver == 6] != 0).any() and (t.gre_key > 0).any()
    for kernel in ((4, 9), (6, 1)):
        want = mix64(dissector_words(t, kernel), 0x5EED)
        assert np.array_equal(dissector_hash(t, kernel, 0x5EED), want)
    for f in (fields.select(t, np.zeros(t.n, bool)), fields.select(t, t.nip >= 2)):
        assert np.array_equal(flow_id(f), flow_id_numpy(f))


def test_a_key_too_short_for_ipv6_is_refused_in_one_line(tmp_path: Path) -> None:
    """A model hashes IPv6 with ports (36 input bytes): a key under 40 bytes is exit 2 and
    one line naming the option, never a traceback mid-capture."""
    path = cap(tmp_path, "gre.pcap", incidents.incident3_gre_v0(flows=5))
    res = invoke("steer", "--key", "6d5a" * 8, path, code=2)
    assert res.out == ""
    assert res.err_lines() == [
        "netsleuth: --key: a 16-byte key cannot hash every packet: IPv6 with ports needs 40 "
        "bytes (40 and 52 are what NICs carry)"
    ]
    ok = invoke("steer", "--key", "6d5a" * 20, path, code=0)
    assert ok.out.startswith("netsleuth steer: 5 packets, 5 flows\n")
