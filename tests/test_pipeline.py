"""The pipeline's per-input record, and merge: parts of a run merged equal the whole run."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.capture.writer import write_pcap
from netsleuth.checks import CHECKS, MERGEABLE, Mergeable, hide_cut, stateless_checks
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.frames import FrameTally
from netsleuth.checks.tunnels import MAX_CALLS, PPTP
from netsleuth.craft import incidents
from netsleuth.decode import decode
from netsleuth.findings import MAX_FRAMES
from netsleuth.pipeline import InputResult, open_input, tables


def test_frame_tally_keeps_the_smallest_frames_in_any_order() -> None:
    frames = np.random.default_rng(7).permutation(np.arange(1, 1001, dtype=np.int64))
    one = FrameTally()
    one.add("x", frames)
    assert one.count == {"x": 1000} and one.frames["x"] == list(range(1, MAX_FRAMES + 1))
    parts = [FrameTally() for _ in range(3)]
    for part, chunk in zip(parts, np.array_split(frames, 3), strict=True):
        part.add("x", chunk)
    merged = FrameTally()
    for part in reversed(parts):  # merge order does not matter either
        merged.merge(part)
    assert (merged.count, merged.frames) == (one.count, one.frames)


def test_frame_tally_merge_shifts_frames_and_keeps_repeats() -> None:
    a, b = FrameTally(), FrameTally()
    a.add("k", np.array([5, 5], dtype=np.int64))
    b.add("k", np.array([1, 3], dtype=np.int64))
    a.merge(b, frame_offset=10)
    assert a.count == {"k": 4} and a.frames == {"k": [5, 5, 11, 13]}


def test_pptp_call_ids_keep_the_smallest_within_the_bound() -> None:
    def with_calls(ids: range) -> PPTP:
        p = PPTP()
        p.calls = set(ids)
        return p

    a, b = with_calls(range(MAX_CALLS - 10, MAX_CALLS + 50)), with_calls(range(0, MAX_CALLS))
    a.merge(b)
    assert a.calls == set(range(MAX_CALLS))


def test_the_mergeable_checks_are_every_per_packet_check_but_the_audit() -> None:
    assert [c for c in CHECKS if c not in MERGEABLE] == [FragmentAudit]
    assert all(callable(getattr(c, "merge", None)) for c in MERGEABLE)


def test_two_parts_merged_equal_one_run() -> None:
    """Every mergeable check over the incidents' packets, cut anywhere in two."""
    frames = [f for _, f in incidents.incident1_poison_fragment()]
    frames += [f for _, f in incidents.incident2_stp_llc(seconds=2)]
    frames += [f for _, f in incidents.incident3_pptp(flows=30)]
    frames += [craft.ether(bytes(40), 0x88B5), craft.ether(bytes(20), 0x0800)]

    def run(part: list[bytes]) -> list[Mergeable]:
        checks = stateless_checks()
        t = decode(RecordBatch.from_packets(part))
        hide_cut(t)
        for c in checks:
            c.observe(t)
        return checks

    whole = [f for c in run(frames) for f in c.findings()]
    assert len(whole) >= 5
    for cut in (1, 17, len(frames) // 2, len(frames) - 1):
        merged = run(frames[:cut])
        for mine, theirs in zip(merged, run(frames[cut:]), strict=True):
            mine.merge(theirs, cut)
        assert [f for c in merged for f in c.findings()] == whole, cut


def test_a_cut_gzip_capture_gives_its_record(tmp_path: Path) -> None:
    plain = tmp_path / "x.pcap"
    with open(plain, "wb") as fh:
        write_pcap(fh, incidents.incident2_stp_llc(seconds=2))
    packed = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    res = InputResult(str(cut))
    n = sum(t.n for t in tables(open_input(str(cut)), res))
    assert (res.format, res.compressed, res.packets) == ("pcap", True, n)
    assert n > 0 and res.linktypes == {1: n}
    assert [i.id for i in res.issues] == ["capture.truncated_file"]
    assert res.issues[0].frame == n + 1
