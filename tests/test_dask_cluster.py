"""`scan --dask`: a real local cluster (a `dask scheduler` and two `dask worker` processes
on 127.0.0.1, started here) gives the JSON of a one-process scan byte for byte: the tcpdump
corpus, the incidents, a gzip capture, and classic pcaps split into ranges mid fragment
train and mid flow. Refusals (no scheduler, stdin, no dask) are one line with their exit
code; a cluster that loses its only worker mid-scan ends with one line, exit 3; SIGTERM
leaves no task of the scan on the scheduler."""

from __future__ import annotations

import ctypes
import glob
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import pytest

from netsleuth import craft
from netsleuth.cluster import NotSharedError, fetch, group, scan_dask, steer_dask
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.errors import FacilityError
from netsleuth.report.jsonout import dumps, scan_document
from netsleuth.scale import FileJob, Job, RangeJob, plan
from netsleuth.scan import scan
from tests.splitutil import record_starts, write, write_pcapng

BIN = Path(sys.executable).parent
NETSLEUTH = [sys.executable, "-m", "netsleuth"]
T0 = 1_700_000_000 * 10**9
PR_SET_PDEATHSIG = 1  # include/uapi/linux/prctl.h


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when pytest dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Cluster:
    """A scheduler and `workers` single-threaded workers, each its own process."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.folder = folder
        try:
            self._start(workers)
        except BaseException:
            self.stop()
            raise

    def _spawn(
        self, name: str, *argv: str, prefix: tuple[str, ...] = ()
    ) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115  (the child's stderr)
        proc = subprocess.Popen(
            [*prefix, str(BIN / "dask"), *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  (prctl only; no threads yet)
        )
        log.close()
        self.procs.append(proc)
        return proc

    def _start(self, workers: int) -> None:
        info = self.folder / "scheduler.json"
        self._spawn(
            "scheduler",
            "scheduler",
            *("--host", "127.0.0.1", "--port", "0", "--no-dashboard"),
            *("--scheduler-file", str(info)),
        )
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline, (self.folder / "scheduler.log").read_text()
            assert self.procs[0].poll() is None, (self.folder / "scheduler.log").read_text()
            time.sleep(0.1)
        self.address: str = json.loads(info.read_text())["address"]
        self.workers = [self.add_worker(f"worker{k}") for k in range(workers)]
        self.client = distributed.Client(self.address, timeout=30, set_as_default=False)
        self.client.wait_for_workers(workers, timeout=60)

    def add_worker(self, name: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        return self._spawn(
            name,
            "worker",
            *("--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"),
            self.address,
            prefix=prefix,
        )

    def addresses(self) -> set[str]:
        return set(self.client.scheduler_info()["workers"])

    def tasks(self) -> int:
        """How many tasks the scheduler holds."""

        def count(dask_scheduler: distributed.Scheduler) -> int:
            return len(dask_scheduler.tasks)

        n: int = self.client.run_on_scheduler(count)
        return n

    def stop(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close(timeout=10)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"), workers=2)
    try:
        yield c
    finally:
        c.stop()


def cli(*argv: str, cwd: Path | None = None) -> tuple[int, str, str]:
    proc = subprocess.run(
        [*NETSLEUTH, *argv],
        check=False,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    return proc.returncode, proc.stdout.decode(), err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def trains_and_flows() -> list[tuple[int, bytes]]:
    """A TCP flow, an IPv4 fragment train and incident 1's poison pair (a first fragment
    and an empty one), interleaved: a cut between any two records is mid train and mid
    flow."""
    src, dst = "10.1.0.1", "10.1.0.2"
    flow = [
        craft.ipv4(src, dst, craft.tcp(src, dst, 40001, 80, bytes(100), flags=f), 6)
        for f in ("S", "A", "A", "FA")
    ]
    train = craft.fragment_ipv4(src, dst, bytes(3000), 17, sizes=[1200, 1200, 0], ident=5)
    seg = craft.tcp(src, dst, 40000, 443, bytes(1380), flags="A")
    first = craft.ipv4(src, dst, seg[:1400], 6, ident=7, flags=0x1)
    empty = craft.ipv4(src, dst, b"", 6, ident=7, frag_off=1400)
    order = [flow[0], train[0], first, flow[1], train[1], empty, flow[2], train[2], flow[3]]
    return [(T0 + i * 1000, craft.ether(p, 0x0800)) for i, p in enumerate(order)]


def one(paths: list[str]) -> str:
    return dumps(scan_document(scan(paths)))


def test_corpus_and_incidents_through_the_cli(
    cluster: Cluster, corpus: Path, tmp_path: Path
) -> None:
    inc = [
        write(tmp_path / "inc1.pcap", incidents.incident1_poison_fragment()),
        write(tmp_path / "inc2.pcap", incidents.incident2_stp_llc(seconds=4)),
        write(tmp_path / "inc3.pcap", incidents.incident3_pptp(flows=200)),
    ]
    gz = tmp_path / "inc3.pcap.gz"
    gz.write_bytes(gzip.compress(inc[2].read_bytes()))
    # Relative names: a worker's working directory is not ours; the JSON names the inputs
    # as given all the same.
    names = sorted(os.path.basename(p) for p in glob.glob(str(corpus / "*.pcap*")))
    names += [os.path.relpath(p, corpus) for p in [*inc, gz]]
    code1, out1, _ = cli("scan", "--format", "json", "--workers", "1", *names, cwd=corpus)
    code, out, err = cli("scan", "--format", "json", "--dask", cluster.address, *names, cwd=corpus)
    assert (code1, code, err) == (0, 0, "")
    assert out == out1
    doc = json.loads(out)
    assert len(doc["inputs"]) == len(names) > 800
    assert doc["inputs"][-1]["compressed"] is True
    assert any(f["id"] == "ipv4.fragment.zero_length" for f in doc["findings"])


def test_unusable_inputs_fail_as_in_one_process(cluster: Cluster, corpus: Path) -> None:
    # A missing file (read here) and this test module, named relative to its folder (read
    # on a worker, by its absolute path: the error names it as given).
    here = Path(__file__).parent
    args = ["scan", "--format", "json", str(corpus / "DTP.pcap"), "/nonexistent/x.pcap"]
    args.append(Path(__file__).name)
    code1, out1, err1 = cli(*args, cwd=here)
    code, out, err = cli(*args, "--dask", cluster.address, cwd=here)
    assert (code1, code) == (2, 2)
    assert out == out1 and err == err1
    assert err.startswith("netsleuth: /nonexistent/x.pcap")
    assert f"netsleuth: {Path(__file__).name}: " in err and str(here) not in err


def test_ranges_mid_fragment_train_and_mid_flow(cluster: Cluster, tmp_path: Path) -> None:
    cap = write(tmp_path / "open.pcap", trains_and_flows())
    whole = one([str(cap)])
    assert '"ipv4.fragment.zero_length"' in whole
    starts = record_starts(cap)
    for cuts in ([*starts[1:]], [starts[2]], [starts[4] - 3], [starts[6]]):
        got = scan_dask(
            [str(cap)],
            address=cluster.address,
            tunnel_depth=3,
            progress=None,
            split_at={str(cap): cuts},
        )
        assert dumps(scan_document(got)) == whole, cuts


def test_a_mix_cut_by_range_size_with_progress(cluster: Cluster, tmp_path: Path) -> None:
    cap = write(tmp_path / "mix.pcap", list(mixed_capture(20_000, id_pool=16)))
    other = tmp_path / "again.pcap"
    other.write_bytes(cap.read_bytes())
    size = cap.stat().st_size
    jobs = plan([str(cap)], 3, 2, range_bytes=size // 5)[0]
    assert len(jobs) == 5 and all(isinstance(j, RangeJob) for j in jobs)
    seen: dict[str, list[int]] = {}
    got = scan_dask(
        [str(cap), str(other)],
        address=cluster.address,
        tunnel_depth=3,
        progress=lambda name, done: seen.setdefault(name, []).append(done),
        range_bytes=size // 5,
    )
    assert dumps(scan_document(got)) == one([str(cap), str(other)])
    # Per input, the bytes done grow range by range to the file's size.
    for name in (str(cap), str(other)):
        assert seen[name] == sorted(seen[name]) and seen[name][-1] == size
        assert len(seen[name]) > 1


def test_a_pcapng_file_cut_into_ranges(cluster: Cluster, tmp_path: Path) -> None:
    """A pcapng file over two reader buffers travels as ranges, each with its section
    (capture/split_pcapng.py): the cluster's JSON is the one-process JSON."""
    cap = write_pcapng(tmp_path / "mix.pcapng", mixed_capture(24_000, id_pool=16))
    size = cap.stat().st_size
    jobs = plan([str(cap)], 3, 2, range_bytes=size // 3)[0]
    assert len(jobs) >= 2 and all(isinstance(j, RangeJob) and j.pcapng for j in jobs)
    got = scan_dask(
        [str(cap)], address=cluster.address, tunnel_depth=3, progress=None, range_bytes=size // 3
    )
    assert dumps(scan_document(got)) == one([str(cap)])


STEER = ["steer", "--format", "json", "--rps-cpus", "0-3", "--compare"]


def test_steer_through_the_cli(cluster: Cluster, corpus: Path, tmp_path: Path) -> None:
    """steer --dask, every model and the what-if scenarios: the JSON of one process, the
    inputs named as given, a missing one failing as it does there."""
    inc = write(tmp_path / "inc3.pcap", incidents.incident3_pptp(flows=300))
    gz = tmp_path / "inc3.pcap.gz"
    gz.write_bytes(gzip.compress(inc.read_bytes()))
    mix = write(tmp_path / "mix.pcap", list(mixed_capture(5_000)))
    names = [os.path.relpath(p, tmp_path) for p in (inc, gz, mix)] + ["missing.pcap"]
    code1, out1, err1 = cli(*STEER, "--workers", "1", *names, cwd=tmp_path)
    code, out, err = cli(*STEER, "--dask", cluster.address, *names, cwd=tmp_path)
    assert (code1, code) == (2, 2) and err == err1
    assert out == out1
    doc = json.loads(out)
    assert [i["path"] for i in doc["inputs"]] == names
    assert doc["inputs"][1]["compressed"] is True and doc["flows"]["distinct"] > 300


def test_steer_ranges_and_spilled_tables(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files cut into ranges mid flow, and tables of a few keys, so that every worker's
    part spills on its own disk and comes back in memory, and the merge here spills
    again: still the JSON of one process."""
    from click.testing import CliRunner

    from netsleuth import cluster as cluster_module
    from netsleuth.cli import main
    from netsleuth.steering import spill

    cap = write(tmp_path / "mix.pcap", list(mixed_capture(6_000)))
    png = write_pcapng(tmp_path / "mix.pcapng", mixed_capture(6_000, id_pool=16))
    code1, out1, _ = cli(*STEER, "--workers", "1", str(cap), str(png))
    real = cluster_module.steer_dask

    def forced(paths: list[str], models: Any, **kw: Any) -> Any:
        starts = record_starts(cap)
        cuts = {str(cap): [starts[100], starts[2_000], starts[4_500]]}
        size = png.stat().st_size
        cuts[str(png)] = [size // 3, 2 * size // 3]
        return real(paths, models, **kw, bounds=(7, 5), split_at=cuts)

    monkeypatch.setattr(cluster_module, "steer_dask", forced)
    monkeypatch.setattr(spill, "FLOW_LIMIT", 7)
    monkeypatch.setattr(spill, "KEY_LIMIT", 5)
    jobs = plan([str(cap)], 3, 2, split_at={str(cap): record_starts(cap)[1:4]})[0]
    assert len(jobs) == 4
    res = CliRunner().invoke(main, [*STEER, "--dask", cluster.address, str(cap), str(png)])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert (res.exit_code, code1) == (0, 0)
    assert res.stdout == out1


def test_steer_reads_a_file_whose_ranges_do_not_join_here(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record claiming an absurd length in the middle: the range holding it stops short,
    so this process reads the file in one piece, as one process would, and leaves no
    spill folder behind."""
    import tempfile

    from netsleuth.steering.compare import scenarios
    from netsleuth.steering.model import NicModel
    from netsleuth.steering.run import steer_many

    cap = write(tmp_path / "mix.pcap", list(mixed_capture(3_000)))
    data = bytearray(cap.read_bytes())
    starts = record_starts(cap)
    data[starts[1500] + 8 : starts[1500] + 12] = (0x7FFFFFFF).to_bytes(4, "little")
    cap.write_bytes(bytes(data))
    spills = tmp_path / "tmp"
    spills.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spills))
    nic = NicModel()
    models = [(nic, None), *scenarios(nic, (0, 1, 2, 3), (6, 1), 0)]
    from netsleuth.steering import parallel

    here: list[Job] = []  # the jobs run in this process
    real = parallel.run_job

    def run_here(spec: parallel.SteerJob) -> parallel.SteerPart:
        here.append(spec.job)
        return real(spec)

    monkeypatch.setattr(parallel, "run_job", run_here)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    got = steer_dask(  # tables of 7 flows and 5 keys: everything spills, here too
        [str(cap)],
        models,
        address=cluster.address,
        split_at={str(cap): [starts[2000]]},
        bounds=(7, 5),
    )
    assert here == [FileJob(str(cap), 3)]  # the ranges came from the workers, then this
    want = steer_many([str(cap)], models)
    assert [r.inputs[0].issues for r in got] == [r.inputs[0].issues for r in want]
    assert got[0].inputs[0].issues[0].id == "capture.corrupt_record"
    assert [(r.packets, r.distinct_flows) for r in got] == [
        (r.packets, r.distinct_flows) for r in want
    ]
    assert list(spills.iterdir()) == [] and list(cwd.iterdir()) == []


def test_small_inputs_travel_together() -> None:
    jobs = plan([__file__] * 200, 3, 2)  # not a capture: one job each
    groups = group([j for js in jobs for j in js], threads=2)
    assert [k for g in groups for k in g] == list(range(200))  # in order, each once
    assert 2 < len(groups) < 200


@pytest.mark.privileged
def test_an_input_a_worker_does_not_see(cluster: Cluster, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: a worker in a mount namespace of its own")
    shared = tmp_path / "shared"
    shared.mkdir()
    gone = write(shared / "gone.pcap", incidents.incident1_poison_fragment())
    other = write(shared / "other.pcap", incidents.incident1_poison_fragment())
    # A third worker sees a tmpfs over `shared`, holding a one-byte other.pcap only.
    script = f'mount -t tmpfs netsleuth-test "{shared}" && printf x > "{other}" && exec "$@"'
    before = cluster.addresses()
    odd = cluster.add_worker("odd", prefix=("unshare", "--mount", "sh", "-c", script, "sh"))
    try:
        cluster.client.wait_for_workers(len(before) + 1, timeout=60)
        (worker,) = cluster.addresses() - before
        why = "(captures must be on storage every worker sees)"
        cases = [
            (gone, f"{gone} is not readable on dask worker {worker} {why}"),
            (
                other,
                f"{other} is 1 bytes on dask worker {worker}, {other.stat().st_size} here {why}",
            ),
        ]
        for path, message in cases:
            with pytest.raises(NotSharedError) as caught:
                scan_dask([str(path)], address=cluster.address, tunnel_depth=3, progress=None)
            assert str(caught.value) == message
        code, out, err = cli("scan", "--dask", cluster.address, str(gone))
        assert (code, out) == (2, "")
        assert one_line(err) == f"netsleuth: {cases[0][1]}"
    finally:
        odd.kill()
        odd.wait(timeout=30)
        deadline = time.monotonic() + 30
        while cluster.addresses() != before:
            assert time.monotonic() < deadline, cluster.addresses()
            time.sleep(0.1)


class Killer:
    """A future whose task killed every worker it ran on, as the client sees it."""

    def result(self, timeout: float | None = None) -> None:
        # The scheduler's WorkerState; fetch() reads only its address.
        worker = types.SimpleNamespace(address="tcp://127.0.0.1:40000")
        raise distributed.KilledWorker("run_jobs-0123", worker, 3)  # type: ignore[arg-type]


def test_a_task_that_kills_its_workers_is_one_line() -> None:
    jobs: list[Job] = [FileJob("a.pcap", 3), FileJob("b.pcap", 3)]
    with pytest.raises(FacilityError) as caught:
        # Killer stands in for a distributed.Client: submit() and the futures fetch() waits on.
        fetch(Killer(), jobs, "tcp://127.0.0.1:1")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "dask workers died running a.pcap and 1 more job(s) (4 of them, the last "
        "tcp://127.0.0.1:40000): give them more memory, or scan with --workers"
    )
    assert caught.value.exit_code == 3


def scan_running(cluster: Cluster, tmp_path: Path) -> subprocess.Popen[bytes]:
    """A CLI scan of 200 inputs, returned once a worker runs one of its tasks."""
    cap = write(tmp_path / "mix.pcap", list(mixed_capture(20_000)))
    proc = subprocess.Popen(
        [*NETSLEUTH, "scan", "--format", "json", "--dask", cluster.address, *[str(cap)] * 200],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not any(cluster.client.processing().values()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def finish(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Its output once it ends (killed after 60 s)."""
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # timed out: end it, close its pipes
            proc.kill()
            proc.communicate()


def test_sigterm_leaves_no_task_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    proc = scan_running(cluster, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = finish(proc)
    assert proc.returncode == 143, err
    assert one_line(err.decode()) == "netsleuth: terminated"
    deadline = time.monotonic() + 30
    while cluster.tasks():
        assert time.monotonic() < deadline, cluster.tasks()
        time.sleep(0.1)


def test_workers_lost_with_results_not_yet_fetched(
    cluster: Cluster, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The workers die right after a task finished, before its result was fetched (the
    progress callback runs in between): the client would wait for the task to run again
    forever; the scan ends with the lost-workers error and nothing on stderr."""
    first = write(tmp_path / "first.pcap", list(mixed_capture(20_000)))
    caps = [str(first)] + [str(tmp_path / f"mix{k}.pcap") for k in range(7)]
    for cap in caps[1:]:
        Path(cap).write_bytes(first.read_bytes())

    def kill(name: str, done: int) -> None:
        if name == caps[0]:  # the first result, the one fetched first
            for worker in cluster.workers:
                worker.kill()

    capfd.readouterr()
    with pytest.raises(FacilityError, match="lost every worker mid-scan"):
        scan_dask(caps, address=cluster.address, tunnel_depth=3, progress=kill)
    assert capfd.readouterr() == ("", "")
    for worker in cluster.workers:
        worker.wait(timeout=30)
    cluster.workers = [cluster.add_worker(f"again{k}") for k in range(2)]
    cluster.client.wait_for_workers(2, timeout=60)


def test_losing_every_worker_mid_scan(cluster: Cluster, tmp_path: Path) -> None:
    """The last test on the module's cluster: it kills the workers."""
    proc = scan_running(cluster, tmp_path)
    for worker in cluster.workers:
        worker.kill()
    out, err = finish(proc)
    assert proc.returncode == 3, err
    line = one_line(err.decode())
    assert line.startswith(f"netsleuth: the dask cluster at {cluster.address} lost every worker")
    assert out == b""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when we return: nothing listens


def test_no_scheduler_is_one_line_exit_3(corpus: Path) -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    code, out, err = cli("scan", "--dask", address, str(corpus / "DTP.pcap"))
    assert code == 3 and out == ""
    assert one_line(err) == (
        f"netsleuth: cannot reach the dask scheduler at {address} (connection refused): "
        "check that `dask scheduler` runs there and that its port is open from this host"
    )


def test_stdin_and_bad_addresses_are_refused() -> None:
    code, _, err = cli("scan", "--dask", "tcp://127.0.0.1:1", "-")
    assert code == 2
    assert one_line(err).startswith("netsleuth: -: --dask workers read the captures themselves")
    code, _, err = cli("scan", "--dask", "nonsense", __file__)
    assert code == 2
    assert one_line(err).startswith("netsleuth: --dask: 'nonsense' is no scheduler address")
    # A scheme the Client cannot open (ucx: another package; a typo) is one line too: no
    # TypeError traceback, no "Exception ignored" from a half-built client's __del__.
    for address in ("ucx://127.0.0.1:1", "tpc://127.0.0.1:1"):
        code, _, err = cli("scan", "--dask", address, __file__)
        assert code == 2
        assert one_line(err) == (
            f"netsleuth: --dask: {address!r} is no scheduler address (netsleuth reaches a "
            f"scheduler over tcp, tls, ws, wss, not {address.split(':')[0]})"
        )
    code, _, err = cli("scan", "--dask", "tcp://127.0.0.1:1", "--workers", "2", __file__)
    assert code == 2 and "not with --live or --workers" in one_line(err)


def test_without_the_extra_and_help_imports_no_dask() -> None:
    hide = (
        "import sys; sys.modules['distributed'] = None; sys.argv = ['netsleuth', 'scan', "
        f"'--dask', 'tcp://127.0.0.1:1', {__file__!r}]; from netsleuth.cliutil import entry; "
        "entry()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", hide], check=False, capture_output=True, timeout=60
    )
    assert proc.returncode == 3
    assert one_line(proc.stderr.decode()) == (
        "netsleuth: --dask needs the dask extra: pip install 'netsleuth[dask]'"
    )
    for argv in (["--help"], ["scan", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "netsleuth", *argv],
            check=False,
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 0
        imported = proc.stderr.decode()
        for module in ("distributed", "dask", "numpy"):
            assert f" {module}\n" not in imported, (argv, module)
    assert "--dask" in proc.stdout.decode()
