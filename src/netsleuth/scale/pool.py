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
        _start_helpers(ctx)
        pool = ProcessPoolExecutor(
            max(workers, 1), mp_context=ctx, initializer=_worker_init, initargs=(stop,)
        )
        try:
            # The objects alive now (modules, NumPy, the decoders) are left out of every
            # later garbage collection, here and in the forked workers: a collection would
            # otherwise walk them in each worker and copy every page it touched.
            gc.freeze()

            def submit(job: J) -> Future[R]:
                # The first submit forks the workers (a fork context starts them all at
                # once: concurrent.futures.process _launch_processes); with a fork server,
                # each may start one (ProcessPoolExecutor.submit: _adjust_process_count),
                # which the pool records only once Process.start has returned
                # (_spawn_process). Held (_held): a KeyboardInterrupt raised in between
                # left a worker the pool did not know of, which took the stop sentinel
                # meant for a known one (the parent then waited for that one for good:
                # Ctrl-C or a hangup hung the run), or was left blocked on the call queue
                # after the run, or printed a traceback if the queue's semaphores were gone
                # before it had opened them.
                with _held():
                    return pool.submit(run, job)

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


def _start_helpers(ctx: multiprocessing.context.BaseContext) -> None:
    """Start a fork server context's two helper processes, multiprocessing's resource
    tracker and the fork server, with the signals that end a run blocked: a hangup sent
    to the process group (a terminal's, or kill -HUP -PGID) must not reach them.

    Each is this interpreter run anew (util.spawnv_passfds: fork, then exec), and the
    signal mask of the thread that starts it survives both (sigprocmask(2)). In CPython
    3.11 the tracker ignores SIGINT and SIGTERM and unblocks those two alone
    (resource_tracker.py: main, _IGNORED_SIGNALS); the fork server ignores SIGINT alone
    (forkserver.py: main, `handlers`). The tracker started unblocked (the pool makes its
    queues' semaphores, registered with it: synchronize.py SemLock), so SIGHUP's default
    action killed it: the parent, unlinking the semaphores as the run ended, printed
    "resource_tracker: process died unexpectedly, relaunching.  Some resources might
    leak." and the tracker it relaunched a KeyError traceback for each (it had never seen
    them). Blocked, SIGHUP stays pending for good in both, and in the workers until
    _worker_init (the server's children keep its mask: forkserver.py _serve_one resets
    handlers, not the mask). Helpers already running (an earlier pool's) are kept."""
    if ctx.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver, resource_tracker

    with _held():
        resource_tracker.ensure_running()
        # It unblocks SIGINT and SIGTERM in this thread after starting the tracker
        # (ResourceTracker.ensure_running, bpo-33613: SIG_UNBLOCK, not the mask it found).
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        forkserver.ensure_running()


@contextlib.contextmanager
def _held() -> Iterator[None]:
    """The signals that end a run held off this thread's code while the block runs, then
    taken as if they came at its end. Blocked: a process forked or started meanwhile begins
    with them blocked. And, in the main thread, their Python handlers swapped for one that
    notes them: with another thread about (when context() uses a fork server), the kernel
    gives a signal sent to the process to a thread that has it unblocked (signal(7)), and
    Python runs the handler in the main thread anyway ("Python signal handlers are always
    executed in the main Python thread", the signal module's documentation), mask or not.
    One ignored (nohup) stays ignored.

    Python may run a handler between any two steps here, so no step may depend on the ones
    after it: once the block is left, the swapped-in handler hands a signal to the one it
    replaced (_forward), and a handler that raises while they are put back is raised once
    they all are (_put_back): before, one left the others noting into a list nobody read,
    and the signals blocked, for good (helper-57 made both happen). A
    noted signal is raised again once the handlers are back, the first one deciding, as
    had it come a moment later: it wins over an exception the block raised (still chained
    as its __context__)."""
    main = threading.current_thread() is threading.main_thread()
    noted: list[int] = []
    old: dict[int, Any] = {}
    holding = True

    def note(signum: int, frame: FrameType | None) -> None:
        if holding:
            noted.append(signum)
        else:
            _forward(signum, frame, old[signum])

    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        for s in SIGNALS if main else ():
            handler = signal.getsignal(s)
            if handler not in (signal.SIG_IGN, None):
                old[s] = handler  # first: note() may run as soon as it is in place
                signal.signal(s, note)
        yield
    finally:
        holding = False
        try:
            raised = _put_back(old)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one blocked here comes now
        if raised is not None:  # a signal's handler, forwarded while they went back
            raise raised
        for signum in dict.fromkeys(noted):
            signal.raise_signal(signum)


def _put_back(handlers: dict[int, Any]) -> BaseException | None:
    """Every handler put back, even when one raises on the way (a signal _held's note
    forwarded, at any step): the first exception, for the caller to raise once all are."""
    left, first = dict(handlers), None
    while left:
        try:
            while left:
                signum, handler = next(iter(left.items()))
                signal.signal(signum, handler)
                del left[signum]
        except BaseException as err:  # raised again by the caller, once all are back
            first = first or err
    return first


def _forward(signum: int, frame: FrameType | None, handler: Any) -> None:
    """A signal to the handler _held swapped out: called, or (SIG_DFL) put back and raised."""
    if callable(handler):
        handler(signum, frame)
    else:
        signal.signal(signum, handler)
        signal.raise_signal(signum)


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
