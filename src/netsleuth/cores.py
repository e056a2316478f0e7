"""How many processes a run may use, and whether its inputs are worth starting them: asked
before netsleuth.scale is imported (the pool, the planner, multiprocessing and
concurrent.futures: 18 ms of a command's start-up here), which a run then imports only
when it starts workers."""

from __future__ import annotations

import os
from collections.abc import Sequence

PROCESSES_MIN = 64 << 20  # below this much input, starting processes costs more (~0.3 s)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count; the
    count where there is no affinity call: macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worth_processes(paths: Sequence[str]) -> bool:
    """Whether the inputs are large enough for worker processes to pay for themselves."""
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p)) >= PROCESSES_MIN
