"""SIGINT and SIGTERM for the commands that run until told to stop (drops, profile, record,
exporter): the first signal asks the run to end at its next poll, with its report; a second
one interrupts. One place, so every command behaves alike."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """Installed as the handler: `requested` is set by the first signal; a second one
    raises KeyboardInterrupt, which unwinds through every cleanup."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stop]:
    stop = Stop()
    old = {s: signal.signal(s, stop) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
