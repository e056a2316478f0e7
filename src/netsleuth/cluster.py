"""`scan --dask ADDRESS` and `steer --dask ADDRESS`: the jobs of `--workers` on a
dask.distributed cluster.

The plan is scale/planning.py's: a whole input per job, or byte ranges of a large pcap or pcapng
file (record- or buffer-aligned), the range size following the cluster's thread count
(client.nthreads()); a pcapng range travels with its start, found by one walk of the file
here (planning.located: a worker would walk the file before its range again, over the
network). Consecutive small jobs travel as one Dask task (group()). Each job
runs on a worker, which reads the capture itself: captures live on storage every worker
sees under the same path (checked up front: each input readable there, with the size it
has here). What comes back through Dask is each job's compact result (scale.Whole
or scale.Part: counts, mergeable check state, each record's end offset and timestamp, and
the bytes of the records that hold a fragment), never the packets; no /dev/shm spill, the
workers being other machines. Results are fetched in input order, released on the
cluster as soon as they are read, and put together by scale.assemble, so the JSON is byte
for byte that of one process. steer's jobs (steer_dask) come back as their sealed tables,
read into memory on the worker (its spill folder is on its own disk: run_detached), and
are merged here as `steer --workers` merges them, spilling here past the tables' limits.

Paths are sent absolute (a worker's working directory is not ours) and the results
labelled back with the names as given. Inputs that are no regular file here (missing, a
FIFO) run in this process and fail or read as they would in one process; stdin is refused.

Failure is one line: a scheduler not reached within CONNECT_TIMEOUT (exit 3); a cluster
without workers for that long, before or during the scan (exit 3); a job that killed
workers until the scheduler gave up on it (KilledWorker: exit 3); a scheduler lost
mid-scan (exit 3). A worker lost once is
not a failure: the scheduler runs its jobs again elsewhere, and a job's result depends only
on the file. On every way out (an error, Ctrl-C, SIGTERM, SIGHUP) the futures are cancelled
and the client closed: jobs not started are dropped; a job already running finishes its range
(at most scale.MAX_RANGE bytes) and its result is discarded (Dask cannot stop a running
task).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import logging
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from netsleuth import __version__
from netsleuth.decode import DEFAULT_TUNNEL_DEPTH
from netsleuth.errors import FacilityError, InputError
from netsleuth.pipeline import InputResult, Progress
from netsleuth.scale import FileJob, Job, Part, Whole, assemble, job_bytes, plan, run_job
from netsleuth.scale.planning import located
from netsleuth.scan import ScanResult
from netsleuth.steering.spill import limits

if TYPE_CHECKING:
    from distributed import Client, Future

    from netsleuth.steering.run import Models, SteerResult

CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler, and to wait for a worker
TICK = 0.25  # seconds between looks at the cluster while waiting (progress, workers)
FETCH_WAIT = 1.0  # seconds between looks at the workers while a result is being fetched
GROUP_JOBS = 64  # at most this many jobs in one task
GROUP_BYTES = 8 << 20  # and at most about this many bytes of input
EXTRA = "--dask needs the dask extra: pip install 'netsleuth[dask]'"
SHARED = "captures must be on storage every worker sees"
# The comms a plain `pip install distributed` can open to a scheduler elsewhere: another
# scheme (ucx: an extra package; inproc: this process; a typo) fails inside the Client,
# with a traceback and a half-built client whose __del__ prints one more after 10 s.
SCHEMES = ("tcp", "tls", "ws", "wss")


def scan_dask(
    paths: Sequence[str],
    *,
    address: str,
    tunnel_depth: int,
    progress: Progress | None,
    timeout: float = CONNECT_TIMEOUT,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
) -> ScanResult:
    """scan() with the jobs run on the Dask cluster whose scheduler is at `address`."""

    def planned(threads: int) -> list[list[Job]]:
        return located(plan(paths, tunnel_depth, threads, range_bytes, split_at, replays=True))

    with _on_cluster(paths, address, timeout, planned, progress, SCAN) as (jobs, results):
        return assemble(jobs, results, None)


def steer_dask(
    paths: Sequence[str],
    models: Models,
    *,
    address: str,
    progress: Progress | None = None,
    timeout: float = CONNECT_TIMEOUT,
    bounds: tuple[int, int] | None = None,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
) -> list[SteerResult]:
    """steer_many() with the jobs run on the Dask cluster at `address`: each job's parts
    come back with their tables in memory (a worker's spill folder is on its own disk),
    and are merged here as steer --workers merges them (steering/parallel.py)."""
    from netsleuth.steering import parallel

    specs = tuple(models), limits() if bounds is None else bounds
    runner: Runner[parallel.SteerPart] = Runner(
        parallel.steer_jobs,
        lambda job: parallel.run_detached(job, *specs),
        lambda part, given: replace(part, res=_named(part.res, given)),
        specs,
    )

    def planned(threads: int) -> list[list[Job]]:
        return located(plan(paths, DEFAULT_TUNNEL_DEPTH, threads, range_bytes, split_at))

    root = tempfile.mkdtemp(prefix=f"netsleuth-steer-{os.getpid()}-")
    try:
        with _on_cluster(paths, address, timeout, planned, progress, runner) as (jobs, results):
            return parallel.merge_parts(jobs, results, models, specs[1], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _on_cluster(  # noqa: PLR0917 - one call per command, every argument needed
    paths: Sequence[str],
    address: str,
    timeout: float,
    planned: Callable[[int], list[list[Job]]],
    progress: Progress | None,
    runner: Runner[R],
) -> Iterator[tuple[list[list[Job]], Iterator[R]]]:
    """The jobs of `paths`, planned for the cluster's threads (`planned`), and their
    results in job order as `runner` makes them there; on every way out the tasks are
    cancelled and the client closed. Refused first: stdin, no dask installed; then no
    scheduler, no worker, a worker that does not see an input as it is here."""
    if "-" in paths:
        raise InputError("-", "--dask workers read the captures themselves: give files, not stdin")
    _require_distributed()
    with _quiet_dask(), _connect(address, timeout) as client:
        _wait_for_workers(client, address, timeout)
        _check_workers(client, [p for p in paths if os.path.isfile(p)])
        jobs = planned(sum(client.nthreads().values()))
        run = _Run(client, address, timeout, jobs, progress=progress, runner=runner)
        try:
            yield jobs, run.results()
        finally:
            run.cancel()


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401  (imported only to learn whether it is installed)
    except ImportError as err:
        raise FacilityError(EXTRA) from err


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """The client's own log lines (reconnect attempts, a closing comm) would break the one
    line on stderr that an error gets: ours says what went wrong."""
    # dask's logging config gives some children levels of their own (distributed.client).
    names = [n for n in logging.Logger.manager.loggerDict if n.startswith("distributed.")]
    logs = [logging.getLogger(n) for n in ["distributed", "asyncio", *names]]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


def _unreachable(address: str, why: str) -> FacilityError:
    return FacilityError(
        f"cannot reach the dask scheduler at {address} ({why}): check that `dask scheduler` "
        "runs there and that its port is open from this host"
    )


def _reachable(address: str, timeout: float) -> None:
    """A TCP connection first, so that a refused port, an unknown name or a silent host
    is said at once and why (the client would retry each until its timeout)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme not in SCHEMES:
        raise ValueError(f"netsleuth reaches a scheduler over {', '.join(SCHEMES)}, not {scheme}")
    if scheme not in ("tcp", "tls"):
        return
    host, port = parse_host_port(location)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError as err:
        raise _unreachable(address, "connection refused") from err
    except TimeoutError as err:
        raise _unreachable(address, f"no answer within {timeout:g} s") from err
    except socket.gaierror as err:
        raise _unreachable(address, f"cannot resolve {host}: {err.strerror}") from err
    except OSError as err:
        raise _unreachable(address, err.strerror or str(err)) from err


@contextlib.contextmanager
def _connect(address: str, timeout: float) -> Iterator[Client]:
    from distributed import Client

    try:
        _reachable(address, timeout)
        client = Client(address, timeout=timeout, set_as_default=False)
    except ValueError as err:  # no scheme://host:port the comm layer can parse
        gc.collect()  # the half-built client's __del__ now, while its loop runs
        raise InputError("--dask", f"{address!r} is no scheduler address ({err})") from err
    except (OSError, TimeoutError) as err:
        gc.collect()
        raise _unreachable(address, f"no answer within {timeout:g} s") from err
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=timeout)


def _wait_for_workers(client: Client, address: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as err:
        raise FacilityError(
            f"the dask scheduler at {address} has no workers: start `dask worker {address}` "
            "on machines that see the captures"
        ) from err


def probe(paths: list[str]) -> tuple[str, list[int | None]]:
    """Run on each worker: netsleuth's version there and each path's size (None when the
    worker cannot open it)."""
    sizes: list[int | None] = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                sizes.append(os.fstat(fh.fileno()).st_size)
        except OSError:
            sizes.append(None)
    return __version__, sizes


def _check_workers(client: Client, paths: list[str]) -> None:
    """Every worker runs this netsleuth and sees each input as it is here. (A worker that
    joins later is not checked: a job it cannot read fails as a read error of the input.)"""
    absolute = [os.path.abspath(p) for p in paths]
    answers: dict[str, Any] = client.run(probe, absolute, on_error="return")
    for worker, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            raise FacilityError(
                f"netsleuth cannot run on dask worker {worker} ({type(answer).__name__}: "
                f"{answer}): install netsleuth[dask] {__version__} on every worker"
            )
        version, sizes = answer
        if version != __version__:
            raise FacilityError(
                f"dask worker {worker} runs netsleuth {version}, this is {__version__}: "
                "install the same version on every worker"
            )
        for path, size in zip(paths, sizes, strict=True):
            if size is None:
                raise NotSharedError(path, f"is not readable on dask worker {worker} ({SHARED})")
            if size != os.path.getsize(path):
                here = os.path.getsize(path)
                raise NotSharedError(
                    path, f"is {size} bytes on dask worker {worker}, {here} here ({SHARED})"
                )


class NotSharedError(InputError):
    """An input a worker does not see as it is here: "PATH is not readable on ..."."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.args = (f"{path} {problem}",)


def run_jobs(jobs: list[Job]) -> list[Whole | Part]:
    """One Dask task: a few consecutive jobs (see group)."""
    return [run_job(job) for job in jobs]


def group(jobs: list[Job], threads: int) -> list[list[int]]:
    """Consecutive jobs as tasks. A task costs the scheduler milliseconds (measured here:
    830 empty tasks took 6 s on two busy cores), so small inputs travel together: up to
    GROUP_JOBS jobs, up to 1/4 of a thread's share of the bytes (at most GROUP_BYTES). A job
    whose input is no regular file here is a group of its own, run here."""
    total = sum(job_bytes(j) for j in jobs)
    target = max(1, min(GROUP_BYTES, total // (4 * max(threads, 1))))
    groups: list[list[int]] = []
    size = 0
    for k, job in enumerate(jobs):
        alone = not os.path.isfile(job.path) or (
            bool(groups) and not os.path.isfile(jobs[groups[-1][0]].path)
        )
        if not groups or alone or size >= target or len(groups[-1]) >= GROUP_JOBS:
            groups.append([])
            size = 0
        groups[-1].append(k)
        size += job_bytes(job)
    return groups


R = TypeVar("R")


@dataclass(frozen=True)
class Runner(Generic[R]):
    """What a command runs on the cluster (see _Run)."""

    task: Callable[..., list[R]]
    local: Callable[[Job], R]
    relabel: Callable[[R, str], R]
    extra: tuple[Any, ...] = ()


class _Run(Generic[R]):
    """The jobs on the cluster; their results in order, progress as they complete. A task
    is `task(jobs, *extra)` on a worker; an input that is no regular file here runs here,
    as `local(job)`; a result is named back as the user named its input (`relabel`)."""

    def __init__(
        self,
        client: Client,
        address: str,
        timeout: float,
        planned: list[list[Job]],
        *,
        progress: Progress | None,
        runner: Runner[R],
    ) -> None:
        self.client, self.address, self.timeout = client, address, timeout
        self.runner = runner
        self.jobs = jobs = [j for js in planned for j in js]
        self.input = [k for k, js in enumerate(planned) for _ in js]  # job -> its input
        self.progress = progress
        self.groups = group(jobs, sum(client.nthreads().values()))
        self.done = [0] * len(planned)  # bytes of each input whose jobs have completed
        self.futures: dict[int, Future[list[R]]] = {}
        self.pending: set[Future[list[R]]] = set()
        self.index: dict[Hashable, int] = {}  # future key -> group
        self.workerless: float | None = None  # since when the cluster has had no worker
        self.completed: queue.Queue[Future[list[R]]] = queue.Queue()
        for g, ks in enumerate(self.groups):
            if not os.path.isfile(jobs[ks[0]].path):
                continue  # runs here, in order (results())
            sent = [replace(jobs[k], path=os.path.abspath(jobs[k].path)) for k in ks]
            # Earlier jobs first, so the results can be put together while later ones run.
            fut = client.submit(
                runner.task, sent, *runner.extra, pure=False, priority=len(self.groups) - g
            )
            self.futures[g] = fut
            self.index[fut.key] = g
            self.pending.add(fut)
            fut.add_done_callback(self.completed.put)  # called on the client's own thread

    def results(self) -> Iterator[R]:
        for g, ks in enumerate(self.groups):
            fut = self.futures.get(g)
            if fut is None:
                yield from (self.runner.local(self.jobs[k]) for k in ks)
                continue
            while fut in self.pending:
                self._wait()
            got = self._fetch(fut, [self.jobs[k] for k in ks])
            del self.futures[g]
            fut.release()  # the cluster forgets it
            for k, result in zip(ks, got, strict=True):
                yield self.runner.relabel(result, self.jobs[k].path)

    def _wait(self) -> None:
        """Take the tasks completed since the last call (waiting up to TICK for one)."""
        try:
            done = [self.completed.get(timeout=TICK)]
        except queue.Empty:
            self._watch_workers()  # nothing for a while: is anybody working?
            return
        with contextlib.suppress(queue.Empty):
            while True:
                done.append(self.completed.get_nowait())
        self.workerless = None
        for fut in done:
            self.pending.discard(fut)
            for k in self.groups[self.index[fut.key]]:
                self.done[self.input[k]] += job_bytes(self.jobs[k])
                if self.progress is not None and fut.status == "finished":
                    self.progress(self.jobs[k].path, self.done[self.input[k]])

    def _fetch(self, fut: Future[list[R]], jobs: list[Job]) -> list[R]:
        """fetch() on a thread of its own while this one watches the workers: a finished
        task's result lives on its worker, and when that worker dies before we have it,
        the client waits for the task to run again (as long as that takes: forever with no
        worker left). A timeout on the fetch itself leaves dask's gather task failing
        behind, which asyncio reports on stderr."""
        box: queue.Queue[tuple[list[R] | None, BaseException | None]] = queue.Queue()

        def get() -> None:
            try:
                box.put((fetch(fut, jobs, self.address), None))
            except BaseException as err:  # raised on the main thread
                box.put((None, err))

        threading.Thread(target=get, name="netsleuth-fetch", daemon=True).start()
        while True:
            try:
                got, err = box.get(timeout=FETCH_WAIT)
            except queue.Empty:
                self._watch_workers()
                continue
            if err is not None:
                raise err
            assert got is not None
            return got

    def _watch_workers(self) -> None:
        try:
            workers = len(self.client.nthreads())
        except OSError:
            workers = 0  # the scheduler itself is gone: the client is reconnecting
        if workers:
            self.workerless = None
            return
        now = time.monotonic()
        if self.workerless is None:
            self.workerless = now
        elif now - self.workerless > self.timeout:
            raise FacilityError(
                f"the dask cluster at {self.address} lost every worker mid-scan (none for "
                f"{self.timeout:g} s): check the workers' logs (out of memory?) and run again"
            )

    def cancel(self) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel(list(self.futures.values()), force=True)


def fetch(fut: Future[list[R]], jobs: list[Job], address: str) -> list[R]:
    """A task's results; a task that killed every worker it ran on, or a scheduler lost
    mid-scan, said in one line."""
    from distributed import KilledWorker

    try:
        return fut.result()
    except (OSError, concurrent.futures.CancelledError) as err:
        if fut.status == "error":
            raise  # the task's own error (a file unreadable mid-scan), as in one process
        # The client gives up on a scheduler it cannot reconnect to within its timeout,
        # and cancels the futures (or a fetch finds its connection closed).
        raise FacilityError(
            f"lost the dask scheduler at {address} mid-scan ({type(err).__name__}): check "
            "its log and run again"
        ) from err
    except KilledWorker as err:
        job = jobs[0]
        what = job.path if isinstance(job, FileJob) else f"{job.path} [{job.start}, {job.end})"
        if len(jobs) > 1:
            what += f" and {len(jobs) - 1} more job(s)"
        last = getattr(err.last_worker, "address", err.last_worker)
        raise FacilityError(
            f"dask workers died running {what} ({err.allowed_failures + 1} of them, the last "
            f"{last}): give them more memory, or scan with --workers"
        ) from err


def _relabel(result: Whole | Part, given: str) -> Whole | Part:
    """A whole input's result named as the user named it. (A range's name is not used:
    assemble() names a split input after its jobs.)"""
    sent = os.path.abspath(given)
    if sent == given or isinstance(result, Part):
        return result
    findings = [replace(f, input=given) if f.input == sent else f for f in result.findings]
    return Whole(_named(result.res, given), result.summary, findings)


def _named(res: InputResult, given: str) -> InputResult:
    """An input record made for the absolute path, named as given (its error too)."""
    sent = os.path.abspath(given)
    error = res.error
    if error is not None and error.startswith(sent + ":"):
        error = given + error[len(sent) :]
    return replace(res, path=given, error=error)


SCAN: Runner[Whole | Part] = Runner(run_jobs, run_job, _relabel)
