"""`doctor` and `collect`: take samples of the receive path (live, from a bundle, or one
from a root directory), diagnose them with host.doctor_rules, or write them as a bundle."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from netsleuth import __version__
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.host.doctor_rules import judge
from netsleuth.host.rates import Rates
from netsleuth.host.sample import Sample, SampleTooLargeError, parse_sample
from netsleuth.sources.bundle import read_bundle, write_bundle
from netsleuth.sources.hostfs import Snapshot, read_live, read_snapshot


@dataclass
class Diagnosis:
    source: str
    samples: list[Sample]  # those the rules read: the first and the last (one if one was taken)
    findings: list[Finding]
    rates: Rates | None
    count: int  # the samples taken or read
    notes: list[str]  # of every sample, each once, in time order


def take_samples(
    count: int,
    interval: float,
    on_sample: Callable[[int], None] | None = None,
    root: Path = Path("/"),
) -> Iterator[tuple[float, Snapshot]]:
    """`count` samples `interval` apart, each given as it is taken (collect writes it and
    lets it go; doctor keeps its first and last)."""
    # Wall-clock stamps (a bundle's sample times) that advance with the monotonic clock: a
    # step of the wall clock between two samples (NTP, an operator) neither makes their
    # times go back (exit 2 in diagnose) nor stretches the interval the rates divide by.
    wall = time.time() - time.monotonic()
    for i in range(count):
        if i:
            time.sleep(interval)
        yield wall + time.monotonic(), read_live(root)
        if on_sample is not None:
            on_sample(i)


# Two samples closer than this give no rate worth the name (and 0 s apart, none at all).
MIN_STEP = 0.001


def diagnose(source: str, snaps: list[tuple[float, Snapshot]]) -> Diagnosis:
    ordered = sorted(snaps, key=lambda x: x[0])
    for (a, _), (b, _) in itertools.pairwise(ordered):
        if b - a < MIN_STEP:
            raise InputError(
                source, f"two samples are {b - a:g} s apart (at {a}): sample times must increase"
            )
    # The rules compare the first sample with the last (host.doctor_rules.judge): only those
    # two are parsed, so time and memory do not grow with the samples in between (a bundle
    # of 60 samples of 8192-CPU /proc/interrupts took 30 s and 1.4 GB parsing them all).
    ends = ordered[:1] + ordered[1:][-1:]
    try:
        samples = [parse_sample(s, t) for t, s in ends]
    except SampleTooLargeError as err:
        raise InputError(source, err.problem) from None
    findings, r = judge(samples)
    notes = dict.fromkeys(n for _, s in ordered for n in s.notes)
    return Diagnosis(source, samples, findings, r, len(ordered), list(notes))


def doctor_live(
    count: int, interval: float, on_sample: Callable[[int], None] | None = None
) -> Diagnosis:
    """The samples between the first and the last keep their notes only: the rules compare
    those two (diagnose), and memory does not grow with --samples."""
    kept: list[tuple[float, Snapshot]] = []
    for t, snap in take_samples(count, interval, on_sample):
        if len(kept) > 1:
            mid_t, mid = kept[-1]
            kept[-1] = (mid_t, Snapshot(notes=mid.notes))
        kept.append((t, snap))
    return diagnose("live", kept)


def doctor_bundle(path: Path) -> Diagnosis:
    return diagnose(str(path), read_bundle(path, ends_only=True))


def doctor_root(root: Path) -> Diagnosis:
    return diagnose(str(root), [(0.0, read_snapshot(root))])


def collect(
    out: Path, count: int, interval: float, on_sample: Callable[[int], None] | None = None
) -> int:
    meta = {"host": socket.gethostname(), "created_by": f"netsleuth {__version__}"}
    return write_bundle(out, take_samples(count, interval, on_sample), meta, planned=count)
