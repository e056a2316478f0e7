"""The fragment audit, end to end through decode and the check registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netsleuth import craft
from netsleuth.capture import RecordBatch, open_capture
from netsleuth.capture.writer import write_pcap
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.craft.l3 import DF, MF
from netsleuth.craft.mix import mixed_capture
from netsleuth.decode import decode
from netsleuth.findings import Severity
from netsleuth.scan import scan
from tests.checkutil import findings
from tests.fragutil import PATTERN

S, D = "192.0.2.1", "198.51.100.7"


def frag(
    payload: bytes,
    off: int,
    more: bool,
    *,
    ident: int = 7,
    proto: int = 17,
    flags: int = 0,
    src: str = S,
) -> bytes:
    ip = craft.ipv4(
        src, D, payload, proto, ident=ident, frag_off=off, flags=flags | (MF if more else 0)
    )
    return craft.ether(ip, 0x0800)


def ids(got: dict[str, object]) -> set[str]:
    return set(got)


def test_sturges_novak_through_scan() -> None:
    frames = [frag(c.encode() * n, off, c != "Q", proto=1) for c, n, off in PATTERN]
    got = findings(frames)
    conflict = got["ipv4.fragment.overlap_conflict/outer"]
    assert conflict.severity == Severity.CRITICAL
    assert conflict.packets == tuple(range(1, 18))
    [dg] = conflict.evidence["datagrams"]
    names = [n for g in dg["policies"] for n in g["policies"]]
    assert sorted(names) == sorted(
        ["first", "last", "bsd", "bsd-right", "linux-legacy", "windows", "solaris", "linux"]
    )
    assert {"policies": ["linux"], "result": "discarded"} in dg["policies"]
    assert got["ipv4.fragment.overlap/outer"].count == 17
    assert got["ipv4.fragment.too_many/outer"].count == 17
    assert "ipv4.fragment.incomplete/outer" not in got


def test_dpdk_commit_sequence() -> None:
    # DPDK 7f0983ee331c: <ofs=0,len=100,MF> <ofs=96,len=100,MF> <ofs=200,len=0,MF>
    # <ofs=200,len=100>. Offsets must be multiples of 8 on the wire, as these are.
    frames = [
        frag(b"a" * 100, 0, True),
        frag(b"b" * 100, 96, True),
        frag(b"", 200, True),
        frag(b"c" * 100, 200, False),
    ]
    got = findings(frames)
    assert got["ipv4.fragment.zero_length/outer"].packets == (3,)
    assert got["ipv4.fragment.misaligned/outer"].packets == (1, 2)
    assert got["ipv4.fragment.overlap_conflict/outer"].packets == (1, 2, 3, 4)


def test_incident1_train_is_complete_but_poisoned() -> None:
    seg = craft.tcp(S, D, 40000, 443, bytes(1380), flags="A")
    frames = [frag(seg[:1400], 0, True, proto=6), craft.pad(frag(b"", 1400, False, proto=6))]
    got = findings(frames)
    assert set(got) == {"ipv4.fragment.zero_length/outer"}


def test_clean_mixed_traffic_gives_no_warning() -> None:
    frames = [f for _, f in mixed_capture(20_000, seed=9, poison=False)]
    got = findings(frames)
    worrying = {k: f.count for k, f in got.items() if f.severity >= Severity.WARNING}
    assert worrying == {}
    assert "ipv4.fragment.incomplete/outer" not in got


def test_duplicate_tiny_too_large_df() -> None:
    dup = [
        frag(b"x" * 16, 0, True, ident=1),
        frag(b"x" * 16, 0, True, ident=1),
        frag(b"y" * 8, 16, False, ident=1),
    ]
    tiny = [
        frag(b"\x00" * 8, 0, True, ident=2, proto=6),
        frag(b"z" * 24, 8, False, ident=2, proto=6),
    ]
    big = [frag(b"w" * 16, 65528, False, ident=3)]
    df = [frag(b"v" * 8, 0, True, ident=4, flags=DF), frag(b"v" * 8, 8, False, ident=4)]
    got = findings(dup + tiny + big + df)
    assert got["ipv4.fragment.duplicate/outer"].packets == (1, 2, 3)
    assert "ipv4.fragment.overlap/outer" not in got
    assert got["ipv4.fragment.tiny/outer"].packets == (4,)
    assert got["ipv4.fragment.too_large/outer"].packets == (6,)
    assert got["ipv4.fragment.df/outer"].packets == (7,)
    assert got["ipv4.fragment.incomplete/outer"].packets == (6,)  # offset 65528, no start


def test_ipv6_fragments() -> None:
    s6, d6 = "2001:db8::1", "2001:db8::2"

    def f6(data: bytes, off: int, more: bool, ident: int) -> bytes:
        return craft.ether(
            craft.ipv6(s6, d6, craft.ipv6_frag(data, 17, offset=off, more=more, ident=ident), 44),
            0x86DD,
        )

    frames = [
        f6(b"a" * 16, 0, False, 1),  # atomic
        f6(b"", 0, True, 2),  # zero length, never completed
        f6(b"b" * 16, 0, True, 3),
        f6(b"c" * 16, 8, False, 3),
    ]  # overlap
    got = findings(frames)
    assert got["ipv6.fragment.atomic/outer"].packets == (1,)
    assert got["ipv6.fragment.zero_length/outer"].packets == (2,)
    assert got["ipv6.fragment.overlap/outer"].packets == (3, 4)
    assert got["ipv6.fragment.incomplete/outer"].packets == (2,)


def test_trains_split_across_batches_complete(tmp_path: Path) -> None:
    frames = []
    for ident in range(1000):
        frames += [
            frag(bytes([ident & 0xFF]) * 1000, 0, True, ident=ident),
            frag(b"e" * 500, 1000, False, ident=ident),
        ]
    path = tmp_path / "trains.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(i * 1000, f) for i, f in enumerate(frames)])
    batches = list(open_capture(str(path), chunk_bytes=1 << 16).batches())
    assert len(batches) > 5
    audit = FragmentAudit()
    for b in batches:
        audit.observe(decode(b))
    assert audit.findings() == []
    assert scan([str(path)]).findings == []


def test_same_inner_fragment_in_two_tunnels_is_two_datagrams() -> None:
    inner = frag(b"q" * 16, 0, True, ident=9)
    frames = []
    for key in (1, 2):
        g = craft.gre(inner, 0x6558, key=key)
        frames.append(craft.ether(craft.ipv4("10.0.0.1", "10.0.0.2", g, 47), 0x0800))
    got = findings(frames)
    assert "ipv4.fragment.duplicate/inner" not in got
    assert got["ipv4.fragment.incomplete/inner"].count == 2


def test_timeout_and_bounded_state() -> None:
    first = frag(b"a" * 16, 0, True, ident=5)
    rest = frag(b"b" * 16, 16, False, ident=5)
    late = RecordBatch.from_packets([first, rest], ts_ns=[0, 31_000_000_000])
    audit = FragmentAudit()
    audit.observe(decode(late))
    got = {f"{f.id}": f.packets for f in audit.findings()}
    assert got == {"ipv4.fragment.incomplete": (1, 2)}  # 31 s apart: expired, not joined

    flood = [frag(b"f" * 16, 0, True, ident=i, src=f"10.9.{i >> 8}.{i & 255}") for i in range(3000)]
    small = FragmentAudit(max_open=100)
    small.observe(decode(RecordBatch.from_packets(flood)))
    assert len(small.open) <= 100
    counts = {f.id: f.count for f in small.findings()}
    assert counts["fragment.evicted"] == 2900
    assert counts["ipv4.fragment.incomplete"] == 100
    assert np.all(np.array([len(small.open)]) == 0)


def test_overlap_evidence_names_the_first_datagrams_whatever_order_they_end_in() -> None:
    """Evidence keeps the 20 datagrams that started first, in frame order: a datagram left
    incomplete (it ends only with the input) comes before 25 that complete after it
    started. It used to keep the first 20 to end, and lose the first to start."""

    def conflicting(ident: int, *, last: bool) -> list[bytes]:
        pair = [frag(b"a" * 16, 0, True, ident=ident), frag(b"b" * 16, 8, True, ident=ident)]
        return pair + ([frag(b"c" * 8, 24, False, ident=ident)] if last else [])

    frames = conflicting(1000, last=False)
    for ident in range(25):
        frames += conflicting(ident, last=True)
    got = findings(frames)
    conflict = got["ipv4.fragment.overlap_conflict/outer"]
    assert conflict.count == 2 + 25 * 3
    firsts = [dg["frames"][0] for dg in conflict.evidence["datagrams"]]
    assert firsts == [1, *range(3, 3 + 19 * 3, 3)]
