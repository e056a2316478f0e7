"""click parameter types the command line shares (click only: imported by cli.py at start-up,
where `--help` must stay light)."""

from __future__ import annotations

import math
from typing import Any

import click

# The longest any run may be told to last or wait, ~31.7 years: far below where the ways a
# command waits overflow (time.sleep and Event.wait take at most ~9.2e9 s, int64
# nanoseconds) and where a duration over an interval stops being an int (collect
# --duration 1e308 --interval 0.1 is inf samples: an OverflowError before).
MAX_SECONDS = 1e9


class Seconds(click.FloatRange):
    """A number of seconds: a float in [min, max], never NaN and never infinite. click's
    FloatRange lets NaN through every bound (each comparison with it is False), so
    `watch --interval nan` sampled as fast as it could and `record --duration nan`,
    `collect --duration nan` and `profile --duration nan` raised ValueError; and an
    unbounded one took inf and 1e308 (OverflowError)."""

    name = "seconds"

    def __init__(self, min: float = 0, max: float = MAX_SECONDS, *, min_open: bool = False) -> None:
        super().__init__(min, max, min_open=min_open)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if math.isnan(rv):
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        return rv

    def _describe_range(self) -> str:
        # 1e9, not 1000000000.0, in --help and in the usage error.
        return super()._describe_range().replace(repr(float(MAX_SECONDS)), f"{MAX_SECONDS:g}")


class NonEmptyPath(click.Path):
    """A path option's type: click.Path, which takes '' (exists=False returns it as given),
    where each command reads an empty path as the option left out: `scan --html ''` wrote no
    report and exited 0, and `collect -o ''` wrote its bundle into the working directory
    (Path('') is '.').

    Nothing more than click.Path's other checks asked for: its `readable` (on by default,
    os.access with the real uid) refused an unreadable capture while the command line was
    parsed, so `scan ok.pcap secret.pcap` scanned neither; each command says itself what it
    cannot read, beside what it could (helper-57)."""

    def __init__(self, *, readable: bool = False, **kwargs: Any) -> None:
        super().__init__(readable=readable, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in ("", b""):
            self.fail("an empty path", param, ctx)
        return super().convert(value, param, ctx)
