"""Split scans equal one scan, byte for byte: captures cut into record-aligned ranges at
every kind of boundary (mid fragment train, mid outer datagram carrying a tunnel, mid
flow, a datagram expiring at the end of a reader batch), merged, and compared with the
JSON of one in-process run."""

from __future__ import annotations

import glob
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from netsleuth import craft, scale
from netsleuth.capture.chunks import CHUNK_BYTES
from netsleuth.capture.split import HEADER, RECORD, split_points
from netsleuth.cli import main
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.pipeline import InputResult, open_input, tables
from netsleuth.report.jsonout import dumps, scan_document
from netsleuth.scale import plan, scan_parallel, worth_processes
from netsleuth.scan import scan
from tests.procutil import ENDINGS, start_in_session
from tests.splitutil import (
    ID_,
    IS,
    OD,
    OS,
    one,
    open_trains,
    record_starts,
    split,
    watch_heads,
    write,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "tcpdump"
T0 = 1_700_000_000 * 10**9


def boundary_frames() -> list[tuple[int, bytes]]:
    return [(T0 + i * 1000, craft.ether(p, 0x0800)) for i, p in enumerate(open_trains())]


def test_every_boundary_of_a_capture_of_open_trains(tmp_path: Path) -> None:
    cap = write(tmp_path / "open.pcap", boundary_frames())
    whole = one(cap)
    assert '"tunnel.outer_fragmented"' in whole and '"ipv4.fragment.zero_length"' in whole
    starts = record_starts(cap)
    # Every record in a range of its own, then each single cut.
    assert split(cap, starts[1:]) == whole
    for at in starts[1:]:
        assert split(cap, [at - 3]) == whole  # resynchronised onto the record at `at`


def test_resync_finds_the_next_record(tmp_path: Path) -> None:
    cap = write(tmp_path / "open.pcap", boundary_frames())
    starts = record_starts(cap)
    assert split_points(str(cap), [starts[3] - 1, starts[3], starts[3] + 1]) == [
        starts[3],
        starts[4],
    ]
    ranges = plan([str(cap)], 3, 2, split_at={str(cap): [starts[5] + 7]})[0]
    # plan() types its jobs as Job; a split file's are all RangeJobs.
    assert [(j.start, j.end) for j in ranges] == [  # type: ignore[union-attr]
        (HEADER, starts[6]),
        (starts[6], cap.stat().st_size),
    ]


def test_a_datagram_expired_at_the_end_of_a_reader_batch(tmp_path: Path) -> None:
    """The outer reassembly expires datagrams when a reader batch ends (4 MiB of records),
    at the batch's latest timestamp, not fragment by fragment: a split must replay the
    one-process batches. Here the first GRE fragment is older than 30 s when the batch of
    large records ends, so its last fragment finds no datagram to complete."""
    seg = craft.tcp(IS, ID_, 40000, 443, bytes(1380), flags="A")
    inner = craft.ether(craft.ipv4(IS, ID_, seg, 6, ident=99), 0x0800)
    gre = craft.fragment_ipv4(OS, OD, craft.gre(inner, 0x6558), 47, sizes=[1000, 0], ident=1)
    big = craft.ether(bytes(200_000), 0x88B5)  # local experimental EtherType
    frames = [(T0, craft.ether(gre[0], 0x0800))]
    frames += [(T0 + 31 * 10**9 + i, big) for i in range(30)]  # > 4 MiB: two batches
    frames += [(T0 + 32 * 10**9, craft.ether(gre[1], 0x0800))]
    cap = write(tmp_path / "expire.pcap", frames)
    whole = one(cap)
    assert '"tunnel.outer_fragmented"' not in whole  # expired first
    starts = record_starts(cap)
    for k in (1, 5, 20, 31):
        assert split(cap, [starts[k]]) == whole
    assert split(cap, starts[1:]) == whole


def test_incidents_split_at_every_record(tmp_path: Path) -> None:
    for name, frames in (
        ("inc1", incidents.incident1_poison_fragment()),
        ("inc2", incidents.incident2_stp_llc(seconds=4)),
        ("inc3", incidents.incident3_pptp(flows=100)),
        ("inc3b", incidents.incident3_gre_v0(flows=100)),
    ):
        cap = write(tmp_path / f"{name}.pcap", frames)
        assert split(cap, record_starts(cap)[1:]) == one(cap), name


def test_the_tcpdump_corpus_split_in_three() -> None:
    files = sorted(glob.glob(str(CORPUS / "*.pcap")))
    if not files:
        pytest.skip(f"the tcpdump corpus is not at {CORPUS}")
    split_files = 0
    for f in files:
        path = Path(f)
        size = path.stat().st_size
        targets = [size // 3, 2 * size // 3]
        split_files += bool(split_points(f, targets))
        assert split(path, targets) == one(path), f
    # 500 of the 785 files hold fewer than three records; most of the others were cut (the
    # rest have records an ordinary reader would not write: see capture/split.py).
    assert split_files > 250


@pytest.fixture(scope="module")
def mixes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = []
    for ids in (1 << 16, 16):
        path = tmp_path_factory.mktemp("mix") / f"mix-{ids}.pcap"
        out.append(write(path, list(mixed_capture(200_000, id_pool=ids))))
    return out


def test_a_200k_slice_of_the_bench_mix(mixes: list[Path]) -> None:
    for cap in mixes:
        size = cap.stat().st_size
        whole = one(cap)
        assert split(cap, [size * k // 9 for k in range(1, 9)]) == whole
        assert split(cap, [size // 2], processes=True) == whole  # worker processes


def test_cli_workers_default_to_the_usable_cpus(
    mixes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--workers is one option with --live's: for capture files its default is the CPUs
    this process may use (issue 14), N when asked."""
    seen: list[int] = []
    real = scale.scan_parallel

    def spy(paths: list[str], **kw: Any) -> Any:
        seen.append(kw["workers"])
        return real(paths, **kw)

    monkeypatch.setattr(scale, "scan_parallel", spy)
    cap = str(mixes[0])
    for extra in ([], ["--workers", "3"]):
        res = CliRunner().invoke(main, ["scan", "--format", "json", *extra, cap, cap])
        assert res.exception is None and res.exit_code == 0
    cpus = len(os.sched_getaffinity(0))
    assert seen == ([cpus] if cpus > 1 else []) + [3]  # one CPU: scanned in this process


def test_cli_workers(mixes: list[Path], tmp_path: Path) -> None:
    cap = str(mixes[1])
    # Small inputs stay in this process (starting workers would cost more than it saves).
    assert worth_processes([cap, cap]) and not worth_processes([str(CORPUS / "x.pcap"), "-"])
    res1 = CliRunner().invoke(main, ["scan", "--format", "json", "--workers", "1", cap])
    res2 = CliRunner().invoke(main, ["scan", "--format", "json", "--workers", "2", cap, cap])
    assert res1.exception is None and res2.exception is None
    assert (res1.exit_code, res2.exit_code) == (0, 0)
    assert res1.stdout == one(mixes[1]) + "\n"
    assert res2.stdout == dumps(scan_document(scan([cap, cap]))) + "\n"


def test_a_file_cut_inside_its_last_record(tmp_path: Path) -> None:
    full = write(tmp_path / "full.pcap", boundary_frames())
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(full.read_bytes()[:-100])
    whole = one(cut)
    assert '"capture.truncated_file"' in whole
    starts = record_starts(full)
    assert split(cut, starts[1:-1]) == whole
    assert split(cut, [starts[4]]) == whole
    assert split(cut, [starts[4]], processes=True) == whole


def test_a_corrupt_record_in_the_middle_reads_the_file_in_one_piece(tmp_path: Path) -> None:
    """The one-process reader stops at a record claiming an absurd length; the range that
    holds it does not end where the next starts, so the split is abandoned."""
    cap = write(tmp_path / "ok.pcap", boundary_frames())
    data = bytearray(cap.read_bytes())
    starts = record_starts(cap)
    data[starts[6] + 8 : starts[6] + 12] = struct.pack("<I", 0x7FFFFFFF)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    whole = one(bad)
    assert '"capture.corrupt_record"' in whole
    assert split(bad, [starts[3], starts[9]]) == whole
    assert split(bad, [starts[9]]) == whole  # the corrupt record in the first range
    assert split(bad, [starts[3]]) == whole  # in the last range: its frame number shifted
    # With worker processes, the first range is read in this one (Assembler.add_head).
    assert split(bad, [starts[9]], processes=True) == whole
    assert split(bad, [starts[3], starts[9]], processes=True) == whole


def test_missing_and_unsplittable_inputs_beside_split_ones(tmp_path: Path) -> None:
    cap = write(tmp_path / "open.pcap", boundary_frames())
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(cap.read_bytes()[:HEADER])
    missing = tmp_path / "missing.pcap"
    paths = [str(cap), str(missing), str(empty), str(cap)]
    result = scan_parallel(
        paths,
        tunnel_depth=3,
        progress=None,
        workers=2,
        split_at={str(cap): record_starts(cap)[1:]},
        processes=False,
    )
    assert dumps(scan_document(result)) == dumps(scan_document(scan(paths)))
    assert result.inputs[1].error is not None


@pytest.mark.parametrize(("sig", "group", "code", "said"), ENDINGS)
def test_a_signal_during_a_parallel_scan(
    mixes: list[Path], sig: signal.Signals, group: bool, code: int, said: str
) -> None:
    """SIGINT or SIGHUP to the process group, as a terminal sends them (a hangup reaches the
    workers too), or SIGTERM to the parent: one line, exit 130, 129 or 143, no traceback
    from any worker, no process of the run and no spill folder left behind."""
    argv = [sys.executable, "-m", "netsleuth", "scan", "--workers", "2", *[str(mixes[0])] * 40]
    proc = start_in_session(argv)
    # Once the parent and both workers run (forked from the parent: scale.pool.context; 40
    # inputs take seconds more).
    deadline = time.monotonic() + 30
    while len(_session_members(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.decode() == f"netsleuth: {said}\n"
    deadline = time.monotonic() + 10
    while _session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session_members(proc.pid) == []
    assert glob.glob(f"/dev/shm/netsleuth-{proc.pid}-*") == []
    assert glob.glob(f"/tmp/netsleuth-{proc.pid}-*") == []


def _session_members(sid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[3]) == sid:  # field 6, session (proc(5))
                out.append(int(entry))
    return out


def test_a_worker_killed_mid_scan_is_said_not_hung(mixes: list[Path]) -> None:
    """A worker the OOM killer takes: exit 3 and one line saying what to do, promptly."""
    argv = [sys.executable, "-m", "netsleuth", "scan", "--workers", "2", *[str(mixes[0])] * 40]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while len(_session_members(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The workers are forks of the parent (scale.pool.context).
    members = {pid: _ppid(pid) for pid in _session_members(proc.pid)}
    workers = [p for p, pp in members.items() if pp == proc.pid]
    assert len(workers) == 2, members
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    text = err.decode()
    assert text.startswith("netsleuth: a worker process died") and text.count("\n") == 1
    assert "try --workers 1" in text
    assert glob.glob(f"/dev/shm/netsleuth-{proc.pid}-*") == []


def test_a_worker_terminated_as_it_starts_dies_quietly(mixes: list[Path]) -> None:
    """SIGTERM reaching a worker between its fork and its initializer (the pool stopping
    a starting worker, as when another died): it must die of the signal, not run the
    parent's inherited handler and print a traceback. Each forked child here sends
    itself SIGTERM the moment it exists (os.register_at_fork)."""
    code = (
        "import os, signal, sys\n"
        "os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM))\n"
        "from netsleuth.cliutil import entry\n"
        "sys.argv = ['netsleuth', *sys.argv[1:]]\n"
        "entry()\n"
    )
    argv = [sys.executable, "-c", code, "scan", "--workers", "2", *[str(mixes[0])] * 8]
    proc = subprocess.run(argv, capture_output=True, timeout=120, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert err.startswith("netsleuth: a worker process died") and err.count("\n") == 1, err


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def test_workers_are_forked_only_from_a_single_threaded_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fork copies locks other threads hold, held for good in the child: with a second
    thread alive the pool falls back to a fork server. (Threads counted through a stand-in:
    other tests of this session may leave threads of their own, a Dask client's say.)"""
    monkeypatch.setattr("threading.active_count", lambda: 1)
    assert scale.context().get_start_method() == "fork"
    monkeypatch.setattr("threading.active_count", lambda: 2)
    assert scale.context().get_start_method() == "forkserver"


def test_the_1m_bench_mix_cut_inside_fragment_trains(tmp_path: Path) -> None:
    """The benchmark's 1M-packet mix (poison included), cut right after records whose
    fragment train goes on in the next range, and at even points, in worker processes:
    the merged JSON is the one-process JSON byte for byte."""
    cap = write(tmp_path / "mix-1m.pcap", list(mixed_capture(1_000_000, poison=True)))
    size = cap.stat().st_size
    # The first batch's records: their ends, and which hold a fragment with more to come.
    table = next(tables(open_input(str(cap)), InputResult(str(cap))))
    ends = HEADER + np.cumsum(table.batch.caplen.astype(np.int64) + RECORD)
    more = np.flatnonzero(table.outer.is_frag & ((table.outer.flags & 1) != 0))
    assert more.shape[0] >= 3
    mid_train = [int(ends[r]) for r in more[[0, more.shape[0] // 2, -1]]]
    whole = one(cap)
    assert '"ipv4.fragment.zero_length"' in whole
    assert split(cap, mid_train) == whole
    assert split(cap, [*mid_train, size // 2, 3 * size // 4], processes=True) == whole


def test_the_first_range_is_read_here_while_workers_read_the_rest(
    mixes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """scan_parallel reads a pcap file's first range in this process (Assembler.add_head):
    each batch of a reader buffer inside the range goes through the checks at once, and
    the records from the buffer that reaches past the range's end are held and replayed
    with the next range's. Cut inside the first reader buffer (everything held), and past
    several buffers (all but the last read at once)."""
    cap = mixes[1]
    size, whole = cap.stat().st_size, one(cap)
    heads, at_once = watch_heads(monkeypatch)
    assert split(cap, [2 << 20, size // 2], processes=True) == whole
    assert heads == [HEADER] and at_once == []
    assert split(cap, [size // 2, 3 * size // 4], processes=True) == whole
    # Every buffer that ends inside the half, one batch each (records well under
    # MAX_RECORDS a buffer): all but the one that reaches past the range's end.
    assert heads == [HEADER, HEADER] and len(at_once) == (size // 2 - HEADER) // CHUNK_BYTES
