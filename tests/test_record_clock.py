"""record keeps its own pace when the wall clock steps: sampling is scheduled on the
monotonic clock, rates divide by the monotonic interval, and only the stored timestamp
follows the wall clock (an NTP step, an operator's `date -s`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import netsleuth.record.run as record_run
from netsleuth.record.run import record

HOST128 = Path(__file__).parent / "fixtures" / "host128"
EPOCH = 1_800_000_000.0
BACK, AHEAD = -3600.0, 86400.0  # the wall clock's steps, after samples 3 and 6


class FakeTime:
    """time for record.run: monotonic moves by sleeping (and 1 us a reading: reading a
    root takes time); the wall clock is monotonic plus an offset that steps."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.offset = EPOCH
        self.sleeps = 0

    def monotonic(self) -> float:
        self.mono += 1e-6
        return self.mono

    def time(self) -> float:
        return self.mono + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        assert self.sleeps < 1_000_000, "record is waiting for the wall clock to come back"
        self.mono += seconds


def test_a_wall_clock_step_changes_neither_pace_nor_rates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTime()
    monkeypatch.setattr(record_run, "time", fake)

    def on_commit(c: record_run.Committed) -> None:
        fake.offset += {3: BACK, 6: AHEAD}.get(c.number, 0.0)

    db = tmp_path / "r.sqlite"
    n = record(db, interval=1.0, duration=10.0, root=HOST128 / "t1", on_commit=on_commit)
    assert n == 10
    rows = sqlite3.connect(db).execute("SELECT t, seconds FROM sample ORDER BY id").fetchall()
    assert [round(s, 3) for _, s in rows] == [1.0] * 10  # every rate over one real second
    stamps = [t - EPOCH for t, _ in rows]
    assert stamps[:3] == pytest.approx([1, 2, 3], abs=1e-3)
    assert stamps[3:6] == pytest.approx([4 + BACK, 5 + BACK, 6 + BACK], abs=1e-3)
    assert stamps[6:] == pytest.approx([7 + BACK + AHEAD + k for k in range(4)], abs=1e-3)
