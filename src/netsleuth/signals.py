"""The signals that end a run, in one place for every module that handles or blocks them;
and their handling for the commands that run until told to stop (drops, profile, record,
exporter): the first signal asks the run to end at its next poll, with its report; a second
one interrupts. One place, so every command behaves alike."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

# The signals that end a run: Ctrl-C, kill's default, and the terminal's hangup (an ssh
# session that drops sends SIGHUP to the foreground process group, workers included).
# Everything that catches, blocks or ignores "the signals that end a run" uses this tuple.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def ending_signals() -> tuple[signal.Signals, ...]:
    """SIGNALS to set a handler for: all of them, less SIGHUP while it is ignored. `nohup
    netsleuth ...` starts us with SIGHUP ignored to outlive the terminal; a handler of ours
    would undo what the user asked for. Blocking it (pthread_sigmask) is harmless either way."""
    nohup = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    return tuple(s for s in SIGNALS if not (nohup and s == signal.SIGHUP))


# The terminal hung up during a run that ends with its report (Stop): the report, written
# to that terminal, then fails (EIO), and the exit says the hangup, not a write error
# (cliutil._run_command). Set once a process: nothing undoes a hangup.
HUNG_UP: list[bool] = []


class Stop:
    """Installed as the handler: `requested` is set by the first signal; a second one
    raises KeyboardInterrupt, which unwinds through every cleanup."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP and not HUNG_UP:
            HUNG_UP.append(True)
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stop]:
    stop = Stop()
    old = {s: signal.signal(s, stop) for s in ending_signals()}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
