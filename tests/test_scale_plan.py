"""How netsleuth.scale deals work to workers: which files are cut into ranges, and the order the
jobs start in (heaviest first) while results still come back in job order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netsleuth import craft, scale
from netsleuth.craft.l3 import MF
from netsleuth.scale import FileJob, RangeJob, job_bytes, plan, planning, pooled
from tests.splitutil import write

T0 = 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    ("sizes", "workers", "split"),
    [
        ([100], 2, [True]),  # one file: only ranges keep both workers busy
        ([100], 1, [False]),
        ([10, 10, 10, 10], 2, [False] * 4),  # two each
        ([131, 129, 131, 129], 2, [False] * 4),  # unequal, but dealt within 10 %
        ([10, 10, 10], 2, [True, False, False]),  # whole, one worker would get two
        ([100, 10, 10, 10], 2, [True, False, False, False]),
        ([5] * 6, 4, [True, True, False, False, False, False]),
        ([100] * 30 + [1] * 2000, 64, [True] * 30 + [False] * 2000),  # each above a share
        ([], 2, []),
    ],
)
def test_files_are_cut_only_where_whole_files_leave_a_worker_idle(
    sizes: list[int], workers: int, split: list[bool]
) -> None:
    assert planning._to_split(sizes, workers) == split


def frames(n: int, size: int) -> list[tuple[int, bytes]]:
    return [(T0 + i, bytes([i % 256]) * size) for i in range(n)]


def test_plan_cuts_the_one_large_file_and_keeps_balanced_files_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "MIN_RANGE", 4096)
    files = [str(write(tmp_path / f"{k}.pcap", frames(64, 200))) for k in range(4)]
    assert [[type(j) for j in js] for js in plan(files, 3, 2)] == [[FileJob]] * 4
    big = str(write(tmp_path / "big.pcap", frames(400, 200)))
    jobs = plan([big, files[0]], 3, 2)
    assert [type(j) for j in jobs[1]] == [FileJob]
    ranges = jobs[0]
    assert len(ranges) > 1 and all(isinstance(j, RangeJob) for j in ranges)
    assert sum(job_bytes(j) for j in ranges) == os.path.getsize(big)  # the header in the first


def test_a_file_made_of_fragments_is_not_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scan replays each range's fragments in the parent after the workers have read
    them, so a file of fragments is read faster whole (planning.FRAGMENT_HEAVY): its first
    buffer is sampled. The same file with the fragment bit cleared is cut, and so is the
    file of fragments for steer, which replays nothing."""
    monkeypatch.setattr(planning, "MIN_RANGE", 4096)

    def udp(ident: int, flags: int) -> bytes:
        ip = craft.ipv4("192.0.2.1", "198.51.100.7", bytes(400), 17, ident=ident, flags=flags)
        return craft.ether(ip, 0x0800)

    frags = write(tmp_path / "frags.pcap", [(T0 + i, udp(i, MF)) for i in range(400)])
    plain = write(tmp_path / "plain.pcap", [(T0 + i, udp(i, 0)) for i in range(400)])
    assert planning.fragment_share(str(frags)) == 1.0
    assert planning.fragment_share(str(plain)) == 0.0
    assert [type(j) for j in plan([str(frags)], 3, 2, replays=True)[0]] == [FileJob]
    assert len(plan([str(plain)], 3, 2, replays=True)[0]) > 1
    assert len(plan([str(frags)], 3, 2)[0]) > 1  # steer's plan
    # Asked for explicitly, it is cut all the same (the tests' and the bench's splits).
    cut = plan([str(frags)], 3, 2, split_at={str(frags): [10_000]}, replays=True)
    assert len(cut[0]) == 2
    assert planning.fragment_share(str(tmp_path / "missing.pcap")) == 0.0


def _record(job: str) -> str:
    with open(os.environ["NETSLEUTH_TEST_ORDER"], "a") as fh:
        fh.write(job + "\n")
    return job.upper()


def test_jobs_start_heaviest_first_and_come_back_in_job_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "order"
    monkeypatch.setenv("NETSLEUTH_TEST_ORDER", str(log))
    jobs = ["a", "b", "c", "d", "e"]
    # One worker runs the jobs one by one, in the order they were handed out.
    with pooled(_record, jobs, 1, weights=[1, 30, 2, 30, 5]) as results:
        assert list(results) == ["A", "B", "C", "D", "E"]
    assert log.read_text().split() == ["b", "d", "e", "c", "a"]  # ties keep their order


def test_a_files_ranges_start_in_file_order_whatever_their_sizes(tmp_path: Path) -> None:
    big = tmp_path / "big.pcap"
    big.write_bytes(bytes(1000))
    small = tmp_path / "small.pcap"
    small.write_bytes(bytes(300))
    # The first range is the smallest (the file header is not in it): it must still go
    # first, so the parent can put the file's fragments in order as the ranges come.
    ranges: list[scale.Job] = [
        RangeJob(str(big), 3, b"", 24, 300, False),
        RangeJob(str(big), 3, b"", 300, 650, False),
        RangeJob(str(big), 3, b"", 650, 1000, True),
    ]
    jobs: list[list[scale.Job]] = [[FileJob(str(small), 3)], ranges]
    assert scale.weights(jobs) == [300, 350, 350, 350]
