"""`steer --workers N`: captures split into parts (files, record-aligned ranges) and the parts'
analyses merged give `steer --format json` byte for byte as one process over the same
packets, with the flow table and key sets spilled to disk or not, with the what-if table
(--compare) and RPS; and every way out removes the workers and their runs."""

from __future__ import annotations

import contextlib
import glob
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from netsleuth import cores, craft, scale
from netsleuth.capture import RecordBatch, pcap
from netsleuth.capture.chunks import CHUNK_BYTES
from netsleuth.capture.split import HEADER, split_points
from netsleuth.cli import main
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.decode import decode
from netsleuth.pipeline import InputResult, open_input, tables
from netsleuth.steering import parallel, spill
from netsleuth.steering.compare import scenarios
from netsleuth.steering.fields import FieldCache
from netsleuth.steering.model import NicModel
from netsleuth.steering.run import Steering, SteerResult, Traffic, heaviest
from netsleuth.steering.spill import SpillDir
from tests.procutil import ppid, session_members
from tests.spillutil import track_spills
from tests.splitutil import record_starts, write, write_pcapng

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "tcpdump"
T0 = 1_700_000_000 * 10**9
# RSS and RPS, and the six what-if scenarios (each with its own loads and key sets).
STEER = ["steer", "--format", "json", "--rps-cpus", "0-3", "--compare"]
Frames = list[tuple[int, bytes]]


def invoke(argv: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(main, argv)
    # guarded() ends every run with sys.exit(code): anything else is a traceback.
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.stdout


def one(paths: list[Path], *extra: str) -> tuple[int, str]:
    return invoke([*STEER, *extra, "--workers", "1", *map(str, paths)])


def split(
    paths: list[Path], cuts: dict[Path, list[int]], *extra: str, processes: bool = False
) -> tuple[int, str]:
    """steer --workers 2 with each file cut where asked (processes=False: the parts run
    one after the other in this process, through the same merge)."""
    real = parallel.steer_parallel

    def forced(p: list[str], models: Any, *, workers: int) -> Any:
        at = {str(k): v for k, v in cuts.items()}
        return real(p, models, workers=workers, split_at=at, processes=processes)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "steer_parallel", forced)
        mp.setattr(cores, "worth_processes", lambda paths: True)  # however small
        return invoke([*STEER, *extra, "--workers", "2", *map(str, paths)])


@pytest.fixture
def tiny_tables(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tables of a few keys: every table spills many times (the files made, listed)."""
    made = track_spills(monkeypatch)
    monkeypatch.setattr(spill, "FLOW_LIMIT", 7)
    monkeypatch.setattr(spill, "KEY_LIMIT", 5)
    monkeypatch.setattr(spill, "RANGE_RECORDS", 16)  # many key ranges in the final merge
    return made


# ----- captures ------------------------------------------------------------------------------
def riding_frames(flows: int = 120) -> Frames:
    """Inner TCP flows in VXLAN over one outer UDP flow and in GRE over one outer IP pair,
    each flow's packets far apart (a cut anywhere falls mid flow), plus ARP and STP frames
    in equal numbers (non-IP classes that tie)."""
    out: list[bytes] = []
    for k in range(3):
        for f in range(flows):
            src, port = f"10.1.{f // 200}.{f % 200 + 1}", 40000 + f
            seg = craft.tcp(src, "10.2.0.1", port, 443, bytes(20 + k), flags="A")
            inner = craft.ether(craft.ipv4(src, "10.2.0.1", seg, 6), 0x0800)
            if f % 2:
                vx = craft.udp("192.0.2.1", "192.0.2.2", 55555, 4789, craft.vxlan(inner, vni=7))
                out.append(craft.ether(craft.ipv4("192.0.2.1", "192.0.2.2", vx, 17), 0x0800))
            else:
                gre = craft.gre(inner, 0x6558)
                out.append(craft.ether(craft.ipv4("198.51.100.1", "198.51.100.2", gre, 47), 0x0800))
        arp = bytes.fromhex("0001080006040001") + bytes(20)
        out.append(craft.pad(craft.ether(arp, 0x0806)))
        out.append(craft.pad(craft.ether(craft.llc(craft.stp_bpdu(), dsap=0x42, ssap=0x42), 0)))
    return [(T0 + i * 1000, f) for i, f in enumerate(out)]


def colliding_frames(v6_first: bool) -> Frames:
    """One flow id for two packets: IPv4 10.0.0.1 -> 10.0.0.2 and IPv6 ::10.0.0.1 ->
    ::10.0.0.2 (an IPv4-compatible address: the same 128-bit numbers; the flow id hashes
    addresses, ports and protocol, not the version), the heaviest flow, and one run names
    it by its first packet. Many two-packet flows tie below it."""
    seg = craft.tcp("10.0.0.1", "10.0.0.2", 1000, 2000, b"x", flags="A")
    v4 = craft.ether(craft.ipv4("10.0.0.1", "10.0.0.2", seg, 6), 0x0800)
    seg6 = craft.tcp("::10.0.0.1", "::10.0.0.2", 1000, 2000, b"x", flags="A")
    v6 = craft.ether(craft.ipv6("::10.0.0.1", "::10.0.0.2", seg6, 6), 0x86DD)
    frames = [v6, v4] if v6_first else [v4, v6]
    for k in range(150):
        seg = craft.tcp("10.3.0.1", "10.3.0.2", 1024 + k, 80, flags="S")
        frames.append(craft.ether(craft.ipv4("10.3.0.1", "10.3.0.2", seg, 6), 0x0800))
        frames.append(v4 if k % 2 else v6)
    frames += frames[2::2]  # every small flow twice
    return [(T0 + i * 1000, f) for i, f in enumerate(frames)]


# ----- merges --------------------------------------------------------------------------------
def _facts(r: SteerResult) -> tuple[object, ...]:
    return (
        r.queues.packets.tolist(),
        r.queues.bytes.tolist(),
        None if r.cpus is None else (r.cpus.packets.tolist(), r.cpus.bytes.tolist()),
        r.distinct_flows,
        r.rss_keys,
        r.rps_keys,
        heaviest(r, 100),
        list(r.tunnels.items()),
        list(r.non_ip.items()),
        r.tunnelled,
        [(f.id, f.summary, f.evidence) for f in r.findings],
    )


@pytest.mark.parametrize("seal", [False, True], ids=["in-memory", "sealed"])
def test_steering_parts_merged_equal_one_steering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seal: bool
) -> None:
    """The analysis itself: a capture's batches observed by several Steering objects (one
    per stretch of batches), merged in order, finish as one that observed them all; whether
    the parts are sealed first (as workers do) or merged as they are."""
    monkeypatch.setattr(pcap, "MAX_RECORDS", 16)  # many small batches
    cap = write(tmp_path / "ride.pcap", riding_frames(60) + colliding_frames(True)[:60])
    models = scenarios(NicModel(), (0, 1, 2, 3), (4, 9), 7)
    with SpillDir() as d:
        res = InputResult(str(cap))
        batches = list(tables(open_input(str(cap)), res))
        one_run = Steering(models, d)
        for t in batches:
            one_run.observe(t)
        whole = [_facts(r) for r in one_run.finish([res])]
        total = Steering(models, d)
        for k in range(0, len(batches), 3):
            part = Steering(models, d)
            for t in batches[k : k + 3]:
                part.observe(t)
            if seal:
                part.seal()
            total.merge(part, frame_offset=0)
        assert [_facts(r) for r in total.finish([res])] == whole
    # 16 batches; the 60 riding flows, the one of two versions and 29 SYNs.
    assert len(batches) == 16 and whole[0][3] == 60 + 1 + 29


def test_incidents_split_at_every_record(tmp_path: Path) -> None:
    for name, frames in (
        ("inc1", incidents.incident1_poison_fragment()),
        ("inc2", incidents.incident2_stp_llc(seconds=4)),
    ):
        cap = write(tmp_path / f"{name}.pcap", frames)
        whole = one([cap])
        assert whole[0] == 0 and '"rss"' in whole[1]
        assert split([cap], {cap: record_starts(cap)[1:]}) == whole, name


def test_tunnel_incidents_split_mid_flow(tmp_path: Path, tiny_tables: list[str]) -> None:
    """PPTP and GRE v0 (incident 3: many inner flows, one outer pair), cut every 7 records,
    the tables spilling every few keys."""
    for name, frames in (
        ("pptp", incidents.incident3_pptp(flows=100)),
        ("gre", incidents.incident3_gre_v0(flows=100)),
    ):
        cap = write(tmp_path / f"{name}.pcap", frames)
        with pytest.MonkeyPatch.context() as mp:  # the one-process answer, in memory
            mp.setattr(spill, "FLOW_LIMIT", 1 << 18)
            mp.setattr(spill, "KEY_LIMIT", 1 << 17)
            whole = one([cap])
        assert '"steer.flow_key_collapse"' in whole[1], name
        made = len(tiny_tables)
        assert split([cap], {cap: record_starts(cap)[7::7]}) == whole, name
        assert len(tiny_tables) - made > 100  # the parts did spill


def test_inner_flows_riding_few_outer_flows(tmp_path: Path, tiny_tables: list[str]) -> None:
    cap = write(tmp_path / "ride.pcap", riding_frames())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(spill, "FLOW_LIMIT", 1 << 18)
        mp.setattr(spill, "KEY_LIMIT", 1 << 17)
        whole = one([cap])
    assert '"inner_flows": 120' in whole[1] and '"outer_flows": 2' in whole[1]
    assert '"class": "802.2 LLC (802.3 length field)"' in whole[1] and '"class": "ARP"' in whole[1]
    starts = record_starts(cap)
    for cuts in (starts[1::50], [starts[len(starts) // 2]], starts[121:125]):
        assert split([cap], {cap: cuts}) == whole
    assert split([cap], {cap: starts[1::50]}, "--nic", "inner") == one([cap], "--nic", "inner")


@pytest.mark.parametrize("v6_first", [False, True], ids=["v4-first", "v6-first"])
def test_a_flow_is_named_by_its_first_packet_across_parts(tmp_path: Path, v6_first: bool) -> None:
    cap = write(tmp_path / "collide.pcap", colliding_frames(v6_first))
    whole = one([cap])
    first = '"src": "::a00:1"' if v6_first else '"src": "10.0.0.1"'
    other = '"src": "10.0.0.1"' if v6_first else '"src": "::a00:1"'
    assert first in whole[1] and other not in whole[1]
    starts = record_starts(cap)
    # The first packet alone in the first part, the other version's first in the next.
    for cuts in ([starts[1]], [starts[1], starts[2]], starts[1::40]):
        assert split([cap], {cap: cuts}) == whole


def test_the_tcpdump_corpus_split_in_three() -> None:
    """Every pcap and pcapng file of the corpus in one steer run, each pcap cut in three."""
    files = sorted(glob.glob(str(CORPUS / "*.pcap")) + glob.glob(str(CORPUS / "*.pcapng")))
    if not files:
        pytest.skip(f"the tcpdump corpus is not at {CORPUS}")
    paths = [Path(f) for f in files]
    cuts = {p: [p.stat().st_size // 3, 2 * p.stat().st_size // 3] for p in paths}
    assert sum(bool(split_points(str(p), c)) for p, c in cuts.items()) > 250
    whole = one(paths)
    assert whole[0] == 0 and whole[1].count('"path": ') == len(files)
    assert split(paths, cuts) == whole


def test_a_large_pcapng_file_split_into_ranges(tmp_path: Path) -> None:
    """scale.plan cuts a pcapng file over two reader buffers (CHUNK_BYTES) into ranges
    that start with a section's state, not a pcap header: every range is read as such (no
    part fails and sends the input back to one piece, no KeyError on the pcapng magic),
    and the merge is one run's JSON."""
    cap = write_pcapng(tmp_path / "mix.pcapng", mixed_capture(50_000, id_pool=16))
    size = cap.stat().st_size
    assert size > 2 * CHUNK_BYTES
    cuts = [size // 3, 2 * size // 3]
    jobs = scale.plan([str(cap)], 3, 2, split_at={str(cap): cuts})[0]
    assert len(jobs) == 3 and all(isinstance(j, scale.RangeJob) and j.pcapng for j in jobs)
    runs = tmp_path / "runs"
    runs.mkdir()
    models = ((NicModel(), None),)
    parts = [
        parallel.run_job(parallel.SteerJob(j, models, str(runs), spill.limits())) for j in jobs
    ]
    assert [p.res.error for p in parts] == [None, None, None]
    assert sum(p.res.packets for p in parts) == 50_000
    whole = one([cap])
    assert whole[0] == 0
    assert split([cap], {cap: cuts}) == whole
    # In worker processes, each range walked to its start (split_pcapng.find_start).
    assert split([cap], {cap: cuts}, processes=True) == whole


def test_cut_corrupt_missing_and_empty_inputs(tmp_path: Path) -> None:
    full = write(tmp_path / "full.pcap", riding_frames(30))
    starts = record_starts(full)
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(full.read_bytes()[:-30])
    data = bytearray(full.read_bytes())
    data[starts[40] + 8 : starts[40] + 12] = struct.pack("<I", 0x7FFFFFFF)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(full.read_bytes()[:HEADER])
    missing = tmp_path / "missing.pcap"
    paths = [cut, bad, missing, empty, full]
    whole = one(paths)
    assert whole[0] == 2
    assert '"capture.truncated_file"' in whole[1] and '"capture.corrupt_record"' in whole[1]
    # The cut record is the last range's: its frame number is shifted by the ones before.
    # The corrupt record lies in a range before the last: that input is read in one piece.
    every = {cut: starts[1:-1], bad: starts[1:], full: starts[1::9]}
    assert split(paths, every) == whole
    assert split(paths, {cut: [starts[5]], bad: [starts[60]], full: [starts[30]]}) == whole


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200,000 packets of the bench mix (~100 MB: enough for worker processes)."""
    return write(tmp_path_factory.mktemp("mix") / "mix.pcap", list(mixed_capture(200_000)))


def test_the_mix_in_worker_processes(mix: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = one([mix])
    assert whole[0] == 0
    size = mix.stat().st_size
    assert split([mix], {mix: [size * k // 9 for k in range(1, 9)]}) == whole
    assert split([mix], {mix: [size // 2]}, processes=True) == whole  # forked workers
    # A process with a second thread does not fork: its workers come from a fork server
    # (threads counted through a stand-in: a Dask client's threads outlive their test).
    with monkeypatch.context() as m:
        m.setattr("threading.active_count", lambda: 2)
        assert scale.context(parallel.__name__).get_start_method() == "forkserver"
        assert split([mix], {mix: [size // 3]}, processes=True) == whole
    # The workers spill at the parent's bounds (a monkeypatch here reaches them: the jobs
    # carry them), and two files and a split one merge in order.
    small = write(mix.parent / "small.pcap", riding_frames(40))
    both = [small, mix, small]
    in_memory = one(both)
    monkeypatch.setattr(spill, "FLOW_LIMIT", 3000)
    monkeypatch.setattr(spill, "KEY_LIMIT", 2000)
    assert split(both, {mix: [size // 3]}, processes=True) == in_memory


def test_workers_default_to_the_usable_cpus(
    mix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = parallel.steer_parallel

    def spy(paths: list[str], models: Any, *, workers: int) -> Any:
        seen.append(workers)
        return real(paths, models, workers=workers)

    monkeypatch.setattr(parallel, "steer_parallel", spy)
    small = write(tmp_path / "small.pcap", riding_frames(10))
    cpus = len(os.sched_getaffinity(0))
    runs = [
        ([str(mix)], []),  # the default: every usable CPU
        ([str(mix)], ["--workers", "1"]),
        ([str(small)], ["--workers", "2"]),  # small inputs stay in this process
        (["-"], ["--workers", "2"]),  # stdin is read once, here
    ]
    for paths, extra in runs:
        res = CliRunner().invoke(main, ["steer", "--format", "json", *extra, *paths], input=b"")
        assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
        assert res.exit_code == (2 if paths == ["-"] else 0), res.output
    assert seen == ([cpus] if cpus > 1 else [])


# ----- every way out -------------------------------------------------------------------------
@contextlib.contextmanager
def _running(mix: Path, spill_dir: Path, delay: float = 0.3) -> Iterator[subprocess.Popen[bytes]]:
    """A long steer over worker processes (120 inputs, ~3.5 s on two workers here: 40, ~1.2
    s, once ended before the 1.0 s kill), `delay` s after both workers run; whatever of
    its session is left at the end is killed (a failed test leaves nothing)."""
    argv = [sys.executable, "-m", "netsleuth", "steer", "--workers", "2", *[str(mix)] * 120]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(spill_dir)},
    )
    try:
        deadline = time.monotonic() + 30
        while len(_workers(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        yield proc
    finally:
        for pid in session_members(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _workers(parent: int) -> list[int]:
    """The workers: the parent's children (forked), or a fork server's (a parent with
    threads, which does not fork)."""
    members = {pid: ppid(pid) for pid in session_members(parent)}
    children = [p for p, pp in members.items() if pp == parent]
    grandchildren = [p for p, pp in members.items() if pp in children]
    return grandchildren or children


def _left_behind(proc: subprocess.Popen[bytes], spill_dir: Path) -> tuple[list[int], list[Path]]:
    deadline = time.monotonic() + 10
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return session_members(proc.pid), list(spill_dir.iterdir())


@pytest.mark.parametrize(
    ("how", "code", "line"),
    [("sigint-to-group", 130, "interrupted"), ("sigterm-to-parent", 143, "terminated")],
)
def test_a_signal_during_a_parallel_steer(
    mix: Path, tmp_path: Path, how: str, code: int, line: str
) -> None:
    """One line and the signal's exit code, no traceback from any worker, and no process
    of the run and no spilled run left behind."""
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    with _running(mix, spill_dir) as proc:
        assert any(p.name.startswith(f"netsleuth-steer-{proc.pid}-") for p in spill_dir.iterdir())
        if how == "sigint-to-group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert (proc.returncode, err.decode()) == (code, f"netsleuth: {line}\n")
        assert _left_behind(proc, spill_dir) == ([], [])


@pytest.mark.parametrize("delay", [0.05, 0.4, 1.0])
def test_a_worker_killed_mid_steer_is_said_not_hung(
    mix: Path, tmp_path: Path, delay: float
) -> None:
    """SIGKILL (the OOM killer) to a worker, at moments that fall in reading, counting,
    sealing or handing a part back: exit 3 and one line, promptly. (Multi-MB parts through
    the pool's pipe hung here 1 run in 5: parallel.PIPE_BYTES.)"""
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    with _running(mix, spill_dir, delay) as proc:
        workers = _workers(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        text = err.decode()
        assert proc.returncode == 3, text
        assert text.startswith("netsleuth: a worker process died") and text.count("\n") == 1
        assert "try --workers 1" in text
        assert _left_behind(proc, spill_dir) == ([], [])


def test_a_part_carries_its_non_ip_counts_sparse(tmp_path: Path) -> None:
    """A worker's part goes through the pool's pipe pickled: its non-IP counts travel as
    their non-zero entries (a dense array added 1 MB to every part, past what the pipe
    carries safely: PIPE_BYTES), and come back the same."""
    frames = [craft.ether(bytes(28), 0x0806)] * 3 + [craft.ether(bytes(46), 0x88CC)]
    traffic = Traffic(SpillDir(str(tmp_path)))
    table = decode(RecordBatch.from_packets(frames))
    traffic.observe(table, FieldCache.of(table))
    sent = pickle.dumps(traffic.__getstate__()["non_ip_counts"])
    assert len(sent) < 1024
    back = pickle.loads(pickle.dumps(traffic))
    assert back.non_ip == traffic.non_ip == {"ARP": (3, 3 * 42), "LLDP": (1, 60)}
