"""Worker processes for scan's and steer's jobs: started by fork where that is safe, stopped
together on every way out."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import FrameType
from typing import Any, TypeVar

from netsleuth.errors import FacilityError
from netsleuth.signals import SIGNALS

J = TypeVar("J")
R = TypeVar("R")


@contextlib.contextmanager
def pooled(
    run: Callable[[J], R],
    jobs: Sequence[J],
    workers: int,
    *,
    weights: Sequence[int] | None = None,
    preload: str = __name__,
) -> Iterator[Iterator[R]]:
    """`run` over `jobs` in at most `workers` processes (context(preload)), the results in
    job order, for scan's and steer's workers alike. The jobs start heaviest first (by
    `weights`; a free worker takes the next): a large job last would leave the other
    workers idle while it runs."""
    with submitter(run, min(workers, len(jobs)), preload=preload) as submit:
        order = list(range(len(jobs)))
        if weights is not None:
            order.sort(key=lambda k: -weights[k])  # stable: ties keep their order
        futures = {k: submit(jobs[k]) for k in order}
        yield (futures[k].result() for k in range(len(jobs)))


@contextlib.contextmanager
def submitter(
    run: Callable[[J], R], workers: int, *, preload: str = __name__
) -> Iterator[Callable[[J], Future[R]]]:
    """`workers` processes (context(preload)) and a function that starts `run` over a job
    in the next free one (pooled). On every way out (an error, Ctrl-C, SIGTERM or SIGHUP:
    term_unwinds) the stop flag is raised (stop_requested(): a worker may end its job
    early, its result dropped), the jobs not started are dropped and the processes are
    stopped before the caller's folders go. A worker that dies is one FacilityError."""
    ctx = context(preload)
    stop = ctx.RawValue("b", 0)
    with term_unwinds():
        pool = ProcessPoolExecutor(
            max(workers, 1), mp_context=ctx, initializer=_worker_init, initargs=(stop,)
        )
        try:
            # The objects alive now (modules, NumPy, the decoders) are left out of every
            # later garbage collection, here and in the forked workers: a collection would
            # otherwise walk them in each worker and copy every page it touched.
            gc.freeze()
            launched = False

            def submit(job: J) -> Future[R]:
                nonlocal launched
                if launched:
                    return pool.submit(run, job)
                # The first submit forks the workers (a fork context starts them all at
                # once: concurrent.futures.process _launch_processes). They start with
                # the signals that end a run blocked, so that one arriving before
                # _worker_init has set their handlers stays pending instead of running this
                # process's inherited Python handler in the child, which printed a traceback
                # ("Exception in initializer") when the pool killed a starting worker.
                old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
                try:
                    return pool.submit(run, job)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old)
                    launched = True

            yield submit
        except BrokenProcessPool as err:
            raise FacilityError(
                f"a worker process died ({err}); the machine may be out of memory: try --workers 1"
            ) from err
        finally:
            gc.unfreeze()
            stop.value = 1
            pool.shutdown(wait=True, cancel_futures=True)


def context(preload: str = __name__) -> multiprocessing.context.BaseContext:
    """Fork this process when it is safe: the workers then start with NumPy and the
    decoders already imported, in milliseconds (a fork server, a fresh interpreter that
    imports `preload` and then forks, took 0.3-0.6 s here: most of a 1M-packet file's
    run). Safe means one thread: a lock another thread holds at the fork stays held for
    good in the child. The pool's own thread starts after its processes, as fork requires
    (concurrent.futures.process: _safe_to_dynamically_spawn_children), and the progress
    bar's refresh thread on its first update, after the pool (commands/common.py)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([preload])
    return ctx


@contextlib.contextmanager
def term_unwinds() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind (as Ctrl-C) while workers run, when nobody has said what
    they should do: the command line has (cliutil.install_signals: exit 143 or 129 after
    every `finally`), a library caller may not, and their default action would leave the
    workers and the spill folder behind. One ignored (nohup) stays ignored."""
    main = threading.current_thread() is threading.main_thread()
    # SIGINT aside: Python raises KeyboardInterrupt for it already.
    unset = [s for s in SIGNALS if s != signal.SIGINT and signal.getsignal(s) is signal.SIG_DFL]

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, _raise) for s in (unset if main else [])}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# In a worker: the parent's stop flag (a byte in shared memory, no lock: a worker killed
# while holding a lock, as a multiprocessing.Event's, would block everyone after it).
_STOP: list[Any] = []


def stop_requested() -> bool:
    """In a worker of pooled(): whether the parent has stopped the pool."""
    return bool(_STOP and _STOP[0].value)


def _worker_init(stop: Any) -> None:
    """Ctrl-C and a terminal's hangup reach the whole process group: the parent reports
    them once and stops the workers through `stop` (a worker that also unwound would print
    a traceback of its own; one killed by SIGHUP's default action would break the pool
    under the parent, whose exit would then say "a worker process died", not "hung up").
    A forked worker also inherits the parent's SIGTERM handler (cliutil's or
    term_unwinds'): it ends as SIGTERM says instead, which is how the pool itself stops a
    worker (Process.terminate)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _STOP.append(stop)
    # Blocked by the parent across the fork (submitter): a SIGTERM that came meanwhile is
    # delivered now, with its default action (a SIGINT or SIGHUP is dropped, ignored).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
