"""Sampling loops on a stepped wall clock: watch's rates and pauses, and doctor's (and
collect's) sample times, follow the monotonic clock."""

from __future__ import annotations

import time

import pytest


class SteppedClock:
    """The time module as watch and doctor see it, its wall clock stepped back an hour
    after the first reading (NTP, an operator); the monotonic clock real; sleeps recorded,
    not slept."""

    def __init__(self) -> None:
        self.reads = 0
        self.slept: list[float] = []

    def time(self) -> float:
        self.reads += 1
        return time.time() - (3600 if self.reads > 1 else 0)

    def monotonic(self) -> float:
        return time.monotonic() + sum(self.slept)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_a_wall_clock_step_changes_no_rate_and_no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    from netsleuth.commands import watch

    clock = SteppedClock()
    monkeypatch.setattr(watch, "time", clock)
    ticks = list(watch.run(watch.Options(interval=0.5, count=2)))
    assert len(ticks) == 2
    assert all(0.5 <= t.rates.seconds < 5 for t in ticks)
    assert max(clock.slept) <= 0.5


def test_doctor_samples_advance_whatever_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from netsleuth import doctor

    clock = SteppedClock()
    monkeypatch.setattr(doctor, "time", clock)
    (t0, _), (t1, _) = doctor.take_samples(2, 0.5)
    assert 0.5 <= t1 - t0 < 5
    assert abs(t0 - time.time()) < 60  # still wall-clock stamps, for the bundle
