"""`doctor` and `collect`: take samples of the receive path (live, from a bundle, or one
from a root directory), diagnose them with host.doctor_rules, or write them as a bundle."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netsleuth import __version__
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.host.doctor_rules import judge
from netsleuth.host.rates import Rates
from netsleuth.host.sample import Sample, parse_sample
from netsleuth.sources.bundle import read_bundle, write_bundle
from netsleuth.sources.hostfs import Snapshot, read_live, read_snapshot


@dataclass
class Diagnosis:
    source: str
    samples: list[Sample]
    findings: list[Finding]
    rates: Rates | None

    @property
    def notes(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.samples:
            for n in s.notes:
                seen.setdefault(n, None)
        return list(seen)


def take_samples(
    count: int,
    interval: float,
    on_sample: Callable[[int], None] | None = None,
    root: Path = Path("/"),
) -> list[tuple[float, Snapshot]]:
    out = []
    for i in range(count):
        if i:
            time.sleep(interval)
        out.append((time.time(), read_live(root)))
        if on_sample is not None:
            on_sample(i)
    return out


# Two samples closer than this give no rate worth the name (and 0 s apart, none at all).
MIN_STEP = 0.001


def diagnose(source: str, snaps: list[tuple[float, Snapshot]]) -> Diagnosis:
    ordered = sorted(snaps, key=lambda x: x[0])
    for (a, _), (b, _) in itertools.pairwise(ordered):
        if b - a < MIN_STEP:
            raise InputError(
                source, f"two samples are {b - a:g} s apart (at {a}): sample times must increase"
            )
    samples = [parse_sample(s, t) for t, s in ordered]
    findings, r = judge(samples)
    return Diagnosis(source, samples, findings, r)


def doctor_live(
    count: int, interval: float, on_sample: Callable[[int], None] | None = None
) -> Diagnosis:
    return diagnose("live", take_samples(count, interval, on_sample))


def doctor_bundle(path: Path) -> Diagnosis:
    return diagnose(str(path), read_bundle(path))


def doctor_root(root: Path) -> Diagnosis:
    return diagnose(str(root), [(0.0, read_snapshot(root))])


def collect(
    out: Path, count: int, interval: float, on_sample: Callable[[int], None] | None = None
) -> int:
    snaps = take_samples(count, interval, on_sample)
    meta = {"host": socket.gethostname(), "created_by": f"netsleuth {__version__}"}
    write_bundle(out, snaps, meta)
    return len(snaps)
