"""`netsleuth collect`: write a bundle of receive-path readings for `doctor --bundle`."""

from __future__ import annotations

from dataclasses import dataclass

from netsleuth.commands.common import say


@dataclass(frozen=True)
class Options:
    output: str
    duration: float
    interval: float


def planned(opts: Options) -> int:
    """The samples --duration and --interval ask for: both ends, at least."""
    return max(2, int(opts.duration / opts.interval) + 1)


def run(opts: Options) -> int:
    """The number of samples written."""
    from pathlib import Path

    from netsleuth import doctor as doc
    from netsleuth.errors import InputError
    from netsleuth.sources.bundle import MAX_SAMPLES

    count = planned(opts)
    if count > MAX_SAMPLES:
        # doctor --bundle refuses a bundle of more (helper-49): refused before an hour of
        # sampling, not after. `record` keeps long series.
        raise InputError(
            "--duration",
            f"{count} samples at --interval {opts.interval:g}: a bundle holds at most "
            f"{MAX_SAMPLES} (use a longer --interval, or `netsleuth record` for long series)",
        )
    return doc.collect(Path(opts.output), count, opts.interval)


def execute(opts: Options) -> int:
    n, asked = run(opts), planned(opts)
    say(f"wrote {opts.output}: {n} samples, {opts.interval:g} s apart")
    if n < asked:
        # The host's samples grew past what doctor --bundle reads (sources/bundle.py _Room).
        say(
            f"netsleuth: collect stopped after {n} of {asked} samples: the bundle holds "
            "what doctor --bundle reads (use a longer --interval, or `netsleuth record`)",
        )
    return 0
