"""`scan --workers N`: the pipeline over many processes, with the same result as one.

Work is cut into jobs: a whole input per job, or, for a large uncompressed classic pcap
file, one job per record-aligned byte range (capture/split.py). A file is cut only where
whole files would leave a worker idle (plan: four equal files on two workers stay whole,
two each), and not when its first MiB is mostly fragments (planning.FRAGMENT_HEAVY:
their replay, below, would cost more than the workers save); jobs start heaviest first,
a file's ranges in file order. Jobs run in worker
processes (multiprocessing: forked when this process runs one thread, from a fork server
otherwise, see context()); results come back in input order as compact picklable state,
and the parent puts them together:

- Mergeable analyses (the summary counts and the per-packet checks: checks.stateless_checks)
  run in the workers; the parent merges each range's state into the previous ones', with
  the range's frame numbers shifted by the records before it (pipeline.py: merge).
- The fragment audit and the outer reassembly cannot be cut: a fragment train or an outer
  datagram can straddle a split, and a datagram's verdict depends on every earlier fragment
  of its key (and on when the reader's batches end: that is when both expire datagrams
  older than 30 s). So a range's worker hands over its fragments instead: the records
  of every packet with a fragment in any IP layer (their bytes one after the other,
  Handover), plus where each record ends in the file and its timestamp. The parent
  replays the one-process reader's batch boundaries from those record ends (8 MiB
  buffers, at most MAX_RECORDS records a batch: capture/chunks.py), decodes the fragments
  of each batch again and runs the two checks over them in file order, with each batch's
  latest timestamp; the packets the reassembly rebuilds go to parent-side per-packet
  checks that are merged like the others. The verdicts, frame lists, evidence and
  flagged keys are those of one process, by construction.

Cost: 16 bytes a record (end offset and timestamp) and the fragments' records cross to
the parent, through files it maps (Handover, unspill); fragments are decoded twice. With
every core busy, what bounds the speed-up is this extra work, wherever it runs: on the
1M-packet mix (64,036 fragment records) the workers' handover costs ~0.06 s of CPU and
the parent's replay ~0.09-0.12 s, beside 0.29-0.40 s for one process doing everything
(this VM's speed varies by the hour). Moving the audit into
the workers and the reassembly alone into the parent was tried and measured: no gain, as
the same work moves from one busy core to another. Memory: a worker writes as it reads
(Handover); the parent maps a range's files, gives back the pages of every batch it has
replayed (Frags.release: 263 MB -> 74 MB peak on 400 MB of fragments), and holds the
results of ranges that arrived early unmapped (ranges are at most MAX_RANGE bytes).

A split file's first range is read by this process itself, while one worker fewer
reads the rest (Assembler.add_head): its reader buffers are the one-process reader's
own wherever they end inside the range (a pcapng range ends where one starts, so all of
them), so their batches go through every check at once, with no handover and no replay;
only a pcap head's buffer that reaches past the range's end is held and replayed with
the next range's records. That range is larger than the others (head_share: 45% of the
file beside one worker, 55% of a pcapng file: planning.PCAPNG_HEAD), as this process
replays the others' fragments too.

A large uncompressed pcapng file is split too (capture/split_pcapng.py): its ranges start
where the one-process reader's buffers start, each with its section's byte order and
interfaces, so a range's batches are the one-process reader's own; the range says where
they end (Part.batches) and the parent replays them as they are. Where each range starts
is found in the worker that reads it (a walk over the blocks before it, from the nearest
start that worker knows), so this process reads its first range at once. Snoop, gzip and stdin
inputs are not split (one job each): a gzip stream cannot be entered in the middle.

The modules, in the order work flows: planning.py (the jobs and the order they start in),
pool.py (the worker processes), worker.py (what a worker runs; handover.py, what a range
hands back), assembly.py (the parent: ranges into one input's result, inputs into the
scan's). scan_parallel, here, ties them together.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace

from netsleuth.capture.split_pcapng import forget
from netsleuth.cores import usable_cores, worth_processes
from netsleuth.pipeline import Progress
from netsleuth.scale.assembly import Assembler, Sequencer, SplitRecord, assemble
from netsleuth.scale.handover import Frags, Handover, job_dir
from netsleuth.scale.planning import (
    MAX_RANGE,
    MIN_RANGE,
    FileJob,
    Job,
    RangeJob,
    first_range,
    job_bytes,
    plan,
    sharing,
    weights,
)
from netsleuth.scale.pool import context, pooled, stop_requested, term_unwinds
from netsleuth.scale.worker import Part, Whole, open_range, run_file, run_job, run_range, unspill
from netsleuth.scan import ScanResult

__all__ = [
    "MAX_RANGE",
    "MIN_RANGE",
    "Assembler",
    "FileJob",
    "Frags",
    "Handover",
    "Job",
    "Part",
    "RangeJob",
    "Sequencer",
    "SplitRecord",
    "Whole",
    "assemble",
    "context",
    "first_range",
    "job_bytes",
    "open_range",
    "plan",
    "pooled",
    "run_file",
    "run_job",
    "run_range",
    "scan_parallel",
    "sharing",
    "stop_requested",
    "term_unwinds",
    "unspill",
    "usable_cores",
    "weights",
    "worth_processes",
]


def scan_parallel(
    paths: Sequence[str],
    *,
    tunnel_depth: int,
    progress: Progress | None,
    workers: int,
    range_bytes: int | None = None,
    split_at: dict[str, list[int]] | None = None,
    processes: bool = True,
) -> ScanResult:
    """scan() over `workers` processes (processes=False: in this one, for tests)."""
    forget()  # starts this process found in an earlier scan (capture/split_pcapng.py)
    if not processes:
        jobs = plan(paths, tunnel_depth, workers, range_bytes, split_at, replays=True)
        return assemble(jobs, map(run_job, [j for js in jobs for j in js]), progress)
    share = head_share(workers)
    jobs = plan(paths, tunnel_depth, workers, range_bytes, split_at, head=share, replays=True)
    flat = [j for js in jobs for j in js]
    if len(flat) == 1:
        return assemble(jobs, map(run_job, flat), progress)
    weight = weights(jobs)
    there = [k for k, j in enumerate(flat) if not _head(j)]
    if len(there) < len(flat):  # this process reads a head: one worker fewer
        workers = max(workers - 1, 1)
    with term_unwinds(), _spill_root() as spill:
        # One folder per job: the same file may be given twice, and its ranges would
        # otherwise share spill names (named by their start offset).
        spilled = [_spilled(flat[k], spill, k) for k in there]
        # On every way out the pool ends (the running jobs finish their range, at most
        # MAX_RANGE bytes) before the spill folder goes.
        with pooled(run_job, spilled, workers, weights=[weight[k] for k in there]) as results:
            return assemble(jobs, results, progress, here=_head)


def head_share(workers: int) -> float:
    """The share of a split pcap file this process reads itself, beside `workers` - 1
    worker processes: it also replays their fragments, so it takes less than an even
    share as workers grow, and more with few. Measured on the 1M-packet mix with one
    worker beside this process: a head of 45% and two ranges of 27.5% took 0.27 s, four
    even ranges on two workers 0.29-0.30 s, one process 0.36 s."""
    return 1 / (1 + 1.2 * max(workers - 1, 0))


def _spilled(job: Job, root: str, name: int | str) -> Job:
    """A range job with a folder of its own for its result (and the shared folder its
    pcapng range tells its start in: planning.sharing)."""
    job = sharing(job, root)
    return replace(job, spill=job_dir(root, name)) if isinstance(job, RangeJob) else job


def _head(job: Job) -> bool:
    """A file's first range, which this process reads itself while the workers read the
    rest (Assembler.add_head): its records need no handover and no replay."""
    return isinstance(job, RangeJob) and first_range(job)


def _spill_root() -> tempfile.TemporaryDirectory[str]:
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.TemporaryDirectory(prefix=f"netsleuth-{os.getpid()}-", dir=shm)
