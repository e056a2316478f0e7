"""`netsleuth record`: per-interval receive-path rates, findings and drops into SQLite."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from netsleuth.commands.common import say
from netsleuth.errors import FacilityError, InputError

if TYPE_CHECKING:
    from netsleuth.record.run import Committed


@dataclass(frozen=True)
class Options:
    db_path: str
    interval: float
    duration: float | None
    drops: bool
    retain: str | None
    root: str | None


def committed(c: Committed) -> None:
    """One stdout line per committed sample: its time and the findings it holds."""
    ids = ", ".join(sorted({f.id for f in c.findings})) or "no findings"
    stamp = time.strftime("%H:%M:%S", time.localtime(c.t))
    click.echo(f"sample {c.number} at {stamp}: {ids}")


def run(opts: Options) -> int:
    """The number of samples recorded."""
    from pathlib import Path

    from netsleuth.record.run import parse_retain
    from netsleuth.record.run import record as run_record

    try:
        # '' is refused, not read as --retain left out (every sample kept for good).
        keep = None if opts.retain is None else parse_retain(opts.retain)
    except ValueError as err:
        raise InputError("--retain", str(err)) from None
    if opts.drops and os.geteuid() != 0:
        raise FacilityError("record --drops needs root (a tracefs instance): run it with sudo")
    return run_record(
        Path(opts.db_path),
        interval=opts.interval,
        duration=opts.duration or None,
        drops=opts.drops,
        retain=keep,
        root=Path(opts.root) if opts.root else None,
        on_commit=committed,
    )


def execute(opts: Options) -> int:
    n = run(opts)
    say(f"recorded {n} sample(s) to {opts.db_path}")
    return 0
