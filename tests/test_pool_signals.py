"""scale.pool._held: the signals that end a run, held while a worker starts and taken
after, with another thread about (a fork server's case: the kernel gives the signal to a
thread that has it unblocked, and Python runs the handler in the main thread anyway)."""

from __future__ import annotations

import signal
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

from netsleuth.scale import pool


class EndedError(Exception):
    pass


def _end(signum: int, frame: Any) -> None:
    raise EndedError(signum)


@pytest.fixture
def handlers() -> Iterator[threading.Thread]:
    """SIGTERM and SIGHUP raise EndedError; a second thread waits, with every signal unblocked."""
    old = {s: signal.signal(s, _end) for s in (signal.SIGTERM, signal.SIGHUP)}
    done = threading.Event()
    other = threading.Thread(target=done.wait, daemon=True)
    other.start()
    try:
        yield other
    finally:
        done.set()
        other.join()
        for s, h in old.items():
            signal.signal(s, h)


def _blocked() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_a_signal_in_the_block_comes_after_it(handlers: threading.Thread) -> None:
    seen = []
    with pytest.raises(EndedError), pool._held():
        signal.raise_signal(signal.SIGTERM)  # to this thread, which holds it off
        seen.append(1)  # reached: the signal did not end the block
    assert seen == [1]
    assert signal.getsignal(signal.SIGTERM) is _end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not _blocked() & {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def test_a_signal_while_the_handlers_go_back_leaves_them_working(
    handlers: threading.Thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that raises while _held puts the others back (here: SIGTERM's, the moment
    it is back) left the rest noting into a list nobody read, for good, and the signals
    blocked; now all go back first and the exception comes after."""
    real = signal.signal
    sent: list[int] = []

    def put(signum: int, handler: Any) -> Any:
        was = real(signum, handler)
        if signum == signal.SIGTERM and handler is _end and not sent:
            sent.append(signum)
            # To the other thread, which has it unblocked: Python runs _end in this one,
            # at its next check, inside the restore.
            assert handlers.ident is not None
            signal.pthread_kill(handlers.ident, signal.SIGTERM)
            time.sleep(0.05)
        return was

    fake = types.SimpleNamespace(**{k: getattr(signal, k) for k in dir(signal) if k[0] != "_"})
    fake.signal = put
    monkeypatch.setattr(pool, "signal", fake)
    with pytest.raises(EndedError), pool._held():
        pass
    monkeypatch.undo()
    assert not _blocked() & {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    assert signal.getsignal(signal.SIGTERM) is _end
    assert signal.getsignal(signal.SIGHUP) is _end
    with pytest.raises(EndedError) as got:
        signal.raise_signal(signal.SIGHUP)
    assert got.value.args == (signal.SIGHUP,)
