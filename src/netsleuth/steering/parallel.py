"""`steer --workers N`: the steer analysis over many processes, with the same result as one.

The jobs are scan's (netsleuth/scale/: plan): a whole input per job, or one job per
record-aligned byte range of a large uncompressed pcap or pcapng file. Each job runs the
whole steer analysis (steering/run.py: Steering, every model and the flow table) in a
worker process over its packets, then seals it: its flow table and hash-key sets go to
sorted runs in a folder of the parent's, and only their paths, the per-queue and per-CPU
sums and the small counters come back through the pipe. The parent merges the parts in
input order and finishes once.

Nothing needs replaying across a split: a packet's RSS queue, RPS CPU, flow id and hash
keys come from that packet alone (a fragment hashes on its own header fields: no ports,
steering/model.py), and the state is sums, exact key sets and exact per-flow counts, none
of which depends on where batches or ranges end. The heaviest flows are exact because
every flow's counts are kept (in runs), not a per-part top-k; a flow in several parts keeps
the fields of its first packet, as one run does (Runs.extend keeps part order). Read
issues are the input record's: ranges that do not join (scale.SplitRecord: one stopped
short, or failed) mean the split went wrong (or the file is corrupt in the middle), and
the input is read again in one piece here; the ranges' issues are numbered in the file.

On a Dask cluster (`steer --dask`, netsleuth/cluster.py) a job runs where the parent
cannot read the worker's disk: its runs come back in memory (run_detached) and are merged
by the same merge_parts.

The parent's temporary folder holds every run: it is removed on every way out (an error,
a worker that dies, Ctrl-C, SIGTERM, SIGHUP), after the workers have stopped: they read the pool's
stop flag between batches (scale.pooled, stop_requested), so a stop takes one batch, not a
whole input.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from netsleuth.capture.split import Span
from netsleuth.capture.split_pcapng import forget
from netsleuth.checks.copies import WINDOW, DeviceCopies
from netsleuth.decode import DEFAULT_TUNNEL_DEPTH, decode
from netsleuth.errors import InputError
from netsleuth.pipeline import InputResult, open_input, tables
from netsleuth.scale import (
    FileJob,
    Job,
    RangeJob,
    SplitRecord,
    first_range,
    open_range,
    plan,
    pooled,
    sharing,
    stop_requested,
    weights,
)
from netsleuth.scale.worker import span_of
from netsleuth.steering.model import NicModel, RpsModel
from netsleuth.steering.run import Models, Steering, SteerResult, steer_many
from netsleuth.steering.spill import SpillDir, limits


@dataclass(frozen=True)
class SteerJob:
    job: Job
    models: tuple[tuple[NicModel, RpsModel | None], ...]
    root: str  # where the job's runs go: a folder of the parent's
    bounds: tuple[int, int]  # the parent's spill limits (flows, keys)


@dataclass
class SteerPart:
    res: InputResult
    steering: Steering  # sealed: its tables are runs, in memory or in the job's folder
    packed: str | None = None  # the file holding its in-memory runs, while they are there
    slots: list[tuple[int, int]] = field(default_factory=list)  # (table, run) of each
    # The file holding its deferred records (Steering.deferred), while they are there:
    # up to 32 records of up to 256 KiB each, which the pipe must not carry (PIPE_BYTES).
    deferred: str | None = None
    span: Span | None = None  # a range's: where its reader read (SplitRecord)


# A part's message through the pool's pipe stays below this: the rest of its arrays go
# through one file. A worker killed while writing a long message to the result pipe would
# leave the parent reading half a message forever (the pipe's other writers keep it open)
# and the lock the workers share for writing taken (concurrent.futures.process: the result
# queue); seen here as a hang, 1 run in 5, with multi-MB messages.
PIPE_BYTES = 64 << 10


def run_job(job: SteerJob) -> SteerPart:
    """What a worker runs (module level: it is pickled by name)."""
    res = InputResult(job.job.path)
    steering = Steering(job.models, SpillDir(job.root), job.bounds)
    if isinstance(job.job, RangeJob) and not first_range(job.job):
        steering.defer = WINDOW  # copies of the range before's packets: the parent's
    j, reader = job.job, None
    try:
        # A range's reader is scan's: a pcapng range starts with its section's byte order
        # and interfaces, not a pcap header (None: it starts past the file's last).
        reader = open_range(j) if isinstance(j, RangeJob) else open_input(j.path)
        for t in () if reader is None else tables(reader, res, tunnel_depth=j.depth):
            if stop_requested():
                break  # the parent drops this result
            steering.observe(t)
    except InputError as err:
        res.error = str(err)
    steering.seal()
    span = span_of(j, reader, res) if isinstance(j, RangeJob) else None
    return SteerPart(res, steering, span=span)


def run_packed(job: SteerJob) -> SteerPart:
    """run_job() in a worker: a big part's arrays into one file (see PIPE_BYTES)."""
    part = run_job(job)
    if part.steering.deferred:
        fd, path = tempfile.mkstemp(prefix="deferred-", dir=job.root)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(part.steering.deferred, fh, protocol=pickle.HIGHEST_PROTOCOL)
        part.steering.deferred, part.deferred = [], path
    tables = part.steering.tables()
    held = [
        (k, i, run)
        for k, runs in enumerate(tables)
        for i, run in enumerate(runs.runs)
        if not isinstance(run, str)
    ]
    if sum(run.nbytes for _, _, run in held) <= PIPE_BYTES:
        return part
    fd, path = tempfile.mkstemp(prefix="part-", dir=job.root)
    with os.fdopen(fd, "wb") as fh:
        for k, i, run in held:
            np.save(fh, run, allow_pickle=False)
            tables[k].runs[i] = run[:0]
    part.packed, part.slots = path, [(k, i) for k, i, _ in held]
    return part


def _unpack(part: SteerPart) -> SteerPart:
    if part.deferred is not None:
        with open(part.deferred, "rb") as fh:
            part.steering.deferred = pickle.load(fh)  # written by our own worker, above
        os.unlink(part.deferred)
        part.deferred = None
    if part.packed is not None:
        tables = part.steering.tables()
        with open(part.packed, "rb") as fh:
            for k, i in part.slots:
                tables[k].runs[i] = np.load(fh, allow_pickle=False)
        os.unlink(part.packed)
        part.packed = None
    return part


def steer_parallel(
    paths: Sequence[str],
    models: Models,
    *,
    workers: int,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
    processes: bool = True,
) -> list[SteerResult]:
    """steer_many() over `workers` processes (processes=False: in this one, for tests)."""
    forget()  # starts this process found in an earlier run (capture/split_pcapng.py)
    jobs = plan(paths, DEFAULT_TUNNEL_DEPTH, workers, range_bytes, split_at)
    flat = [j for js in jobs for j in js]
    if processes and len(flat) == 1:
        return steer_many(paths, models)  # one job: no parts to merge
    root = tempfile.mkdtemp(prefix=f"netsleuth-steer-{os.getpid()}-")
    try:
        bounds = limits()
        specs = [SteerJob(sharing(j, root), tuple(models), root, bounds) for j in flat]
        with _results(specs, weights(jobs), workers, processes) as results:
            return merge_parts(jobs, map(_unpack, results), models, bounds, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def merge_parts(
    jobs: list[list[Job]],
    results: Iterator[SteerPart],
    models: Models,
    bounds: tuple[int, int],
    root: str,
) -> list[SteerResult]:
    """The parts of every input's jobs (in job order) merged into one result per model;
    the merged tables (and an input read again here in one piece) spill under `root`,
    a folder the caller removes."""
    total = Steering(models, SpillDir(root), bounds)
    inputs = []
    for input_jobs in jobs:
        specs = [SteerJob(j, tuple(models), root, bounds) for j in input_jobs]
        parts = [next(results) for _ in input_jobs]
        inputs.append(_merge_input(specs, parts, total))
    return total.finish(inputs)


def run_detached(job: Job, models: Models, bounds: tuple[int, int]) -> SteerPart:
    """run_job() where the parent cannot read this machine's files (a Dask worker): the
    part's tables come back in memory, and its spill folder goes here."""
    root = tempfile.mkdtemp(prefix="netsleuth-steer-part-")
    try:
        part = run_job(SteerJob(job, tuple(models), root, bounds))
        for runs in part.steering.tables():
            runs.runs = [
                np.fromfile(r, dtype=runs.dtype) if isinstance(r, str) else r for r in runs.runs
            ]
        return part  # its SpillDir names the folder removed below: nothing writes there
    finally:
        shutil.rmtree(root, ignore_errors=True)


def steer_jobs(jobs: list[Job], models: Models, bounds: tuple[int, int]) -> list[SteerPart]:
    """One Dask task of steer --dask: a few consecutive jobs (netsleuth/cluster.py)."""
    return [run_detached(job, models, bounds) for job in jobs]


def _merge_input(specs: list[SteerJob], parts: list[SteerPart], total: Steering) -> InputResult:
    """One input's parts into `total`; its input record. A range's first packets that
    may be copies of the range before's (Steering.defer) come back as records: they go
    through `total` here, after the parts before, with what those parts remember of
    their last packets (a cooked capture's copies are at most WINDOW frames from their
    original: checks/copies.py)."""
    res = _ranges(specs, parts)
    if res is None:  # read in one piece, here
        first = specs[0]
        job = FileJob(first.job.path, first.job.depth)
        part = run_job(SteerJob(job, first.models, first.root, first.bounds))
        parts, res = [part], part.res
    total.copies = DeviceCopies(fragments=False)  # no copy spans two inputs
    frames = 0  # the file's records before the part
    for spec, part in zip(specs, parts, strict=False):
        for batch in part.steering.deferred:
            moved = replace(batch, frame=batch.frame + frames)
            total.observe(decode(moved, tunnel_depth=spec.job.depth))
        total.copies.absorb(part.steering.copies.shifted(frames))
        total.merge(part.steering)
        frames += part.res.packets
    return res


def _ranges(specs: list[SteerJob], parts: list[SteerPart]) -> InputResult | None:
    """The input record of a whole input (one part) or of its ranges put together; None
    when the ranges do not join up (scale.SplitRecord)."""
    if len(parts) == 1 and isinstance(specs[0].job, FileJob):
        return parts[0].res
    record = SplitRecord(specs[0].job.path)
    for spec, part in zip(specs, parts, strict=True):
        assert isinstance(spec.job, RangeJob) and part.span is not None
        if not record.add(part.res, part.span):
            return None
    return record.res


@contextlib.contextmanager
def _results(
    specs: list[SteerJob], sizes: list[int], workers: int, processes: bool
) -> Iterator[Iterator[SteerPart]]:
    """The jobs' parts, in job order: from worker processes (scale.pooled), or run here
    one by one."""
    if not processes:
        yield map(run_job, specs)
        return
    with pooled(run_packed, specs, workers, weights=sizes, preload=__name__) as results:
        yield results
