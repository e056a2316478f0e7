"""record: what goes into the database comes back out, a sample of a 128-CPU host stays
small, findings become spans, retention expires, and a record killed with SIGKILL at any
moment leaves a readable database holding every sample it reported committed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netsleuth.errors import InputError
from netsleuth.host.doctor_rules import rate_findings
from netsleuth.host.rates import Rates, rates
from netsleuth.host.sample import Sample, parse_sample
from netsleuth.record.run import Recorder, parse_retain
from netsleuth.record.schema import VERSION, open_db
from netsleuth.record.store import DropRow, Writer, read
from netsleuth.sources.hostfs import read_snapshot

HOST128 = Path(__file__).parent / "fixtures" / "host128"
NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
DAY_BUDGET = 1_000_000_000 / 86400  # bytes a sample may take for a day at 1 s under 1 GB


def host128() -> tuple[Rates, Sample]:
    a = parse_sample(read_snapshot(HOST128 / "t0"), 0.0)
    b = parse_sample(read_snapshot(HOST128 / "t1"), 1.0)
    return rates(a, b), b


def test_rates_come_back(tmp_path: Path) -> None:
    r, last = host128()
    w = Writer(open_db(tmp_path / "r.sqlite", create=True))
    w.add(100.0, r, rate_findings(r, last))
    got = read(w.db)
    assert got.times == [100.0]
    assert got.cpus == list(range(128))
    # The fixture's CPUs 0-3 take 400k packets/s and 20k NET_RX/s, the others ~6k and ~300.
    assert got.cpu["processed"][0, 0] == 400_000
    assert got.cpu["net_rx"][0, 2] == 20_000
    assert got.cpu["softirq_pct"][0, 1] == 60.0  # 60 ticks of USER_HZ=100 in 1 s
    assert got.cpu["time_squeeze"][0, 3] == 20 and got.cpu["time_squeeze"][0, 4] == 0
    assert len(got.queues) == 32 and got.queues["eth0 rx-31"] == [62_500.0]
    assert "host.softirq_hotspot" in {f["id"] for f in got.findings}


def test_a_128_cpu_sample_fits_a_day_in_1gb(tmp_path: Path) -> None:
    r, last = host128()
    path = tmp_path / "r.sqlite"
    w = Writer(open_db(path, create=True))
    findings = rate_findings(r, last)
    n = 200
    for i in range(n):
        w.add(float(i), r, findings)
    w.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    per_sample = path.stat().st_size / n
    assert per_sample < DAY_BUDGET, per_sample
    assert len(read(w.db).findings) == len({f.id for f in findings})  # spans, not rows


def test_findings_are_spans(tmp_path: Path) -> None:
    r, last = host128()
    hot = rate_findings(r, last)
    w = Writer(open_db(tmp_path / "r.sqlite", create=True))
    for t, f in ((1.0, hot), (2.0, hot), (3.0, []), (4.0, hot)):
        w.add(t, r, f)
    spans = [
        (f["first"], f["last"], f["samples"])
        for f in read(w.db).findings
        if f["id"] == "host.softirq_hotspot"
    ]
    assert spans == [(1.0, 2.0, 2), (4.0, 4.0, 1)]


def test_retention_expires_old_samples(tmp_path: Path) -> None:
    r, last = host128()
    w = Writer(open_db(tmp_path / "r.sqlite", create=True))
    for t in range(10):
        w.add(float(t), r, rate_findings(r, last) if t < 3 else [])
    assert w.expire(5.0) == 5
    got = read(w.db)
    assert got.times == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert got.findings == []  # the hotspot ended at t=2
    assert w.db.execute("SELECT count(*) FROM device WHERE sample <= 5").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800.0), ("12h", 43200.0), ("30m", 1800.0), ("90", 90.0)]
)
def test_parse_retain(text: str, seconds: float) -> None:
    assert parse_retain(text) == seconds


def test_schema_version_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    open_db(path, create=True).close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(VERSION,)]
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.execute("UPDATE schema_version SET version=99")
    db.commit()
    db.close()
    with pytest.raises(InputError, match="newer"):
        open_db(path, create=True)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match="not a record database"):
        open_db(junk, create=False)


def test_cli_refuses_a_bad_retention(tmp_path: Path) -> None:
    out = subprocess.run(
        [NETSLEUTH, "record", "--db", str(tmp_path / "r.sqlite"), "--retain", "soon"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("netsleuth: --retain:") and "Traceback" not in out.stderr


def test_cli_records_a_root_for_a_duration(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    before = time.time()  # the loop's grid starts after this
    out = subprocess.run(
        [
            NETSLEUTH,
            "record",
            "--db",
            str(db),
            "--root",
            str(HOST128 / "t1"),
            "--interval",
            "0.5",
            "--duration",
            "1.5",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    # Three points of the grid (a point passed in a stall of over 0.5 s would be skipped).
    assert out.stdout.count("\n") == 3
    got = read(open_db(db, create=False))
    assert len(got.times) == 3 and got.meta["interval"] == "0.5"
    assert (got.cpu["processed"] == 0).all()  # one reading, read again: nothing moved
    # Samples are due on a 0.5 s grid from the start: the third never early (a late first
    # sample on a busy machine made a check of times[2] - times[0] fail).
    assert got.times[2] >= before + 1.49


class FakeClock:
    """time.monotonic and time.sleep for record's loop: sleeping moves the clock, and the
    first sleep from `stall_at` on lasts `stall` seconds longer (the process stopped)."""

    def __init__(self, stall_at: float = 1e9, stall: float = 0.0) -> None:
        self.now = 100.0
        self.stall_at, self.stall = stall_at, stall

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.now >= self.stall_at and self.stall:
            self.now += self.stall
            self.stall = 0.0


class StarvedClock(FakeClock):
    """Every sleep after the first sample's wait ends 2.1 s late."""

    def sleep(self, seconds: float) -> None:
        self.now += seconds + (2.1 if self.now >= 101 else 0.0)


@pytest.mark.parametrize(
    ("where", "want"),
    [
        # A 3.5 s stall during the second sample: the next is at the first point after it,
        # 106, covering 102-106 (catching up sampled 103, 104 and 105 at 105.5, intervals
        # of no time at all).
        ("step 2", [101, 102, 106, 107, 108, 109, 110]),
        # Past the end: one last sample covers the rest of the duration.
        ("step 8", [*range(101, 109), 113.5]),
        # A 1.7 s stall while waiting for 103: woken at 104.2, a whole interval late, the
        # loop waits for 105 (helper-49: it sampled then and again at once).
        ("sleep", [101, 102, 105, 106, 107, 108, 109, 110]),
        # Every sleep 2.1 s too long (a starved host): a point skipped once between two
        # samples, not at every wake (103.15 skipped for 104, sampled at 105.3; 107.45
        # for 108, 109.6; then the end, 111.75). Skipping at every wake sampled only at
        # the end: [101, 111.75].
        ("starved", [101, 105.3, 109.6, 111.75]),
    ],
)
def test_record_skips_grid_points_a_stall_passed(
    where: str, want: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from netsleuth.record import run

    clock = FakeClock(102.5, 1.7) if where == "sleep" else FakeClock()
    if where == "starved":
        clock = StarvedClock()
    taken: list[float] = []

    def step(drops: list[DropRow], findings: list[object]) -> None:
        taken.append(clock.now)
        if where == f"step {len(taken)}":
            clock.now += 3.5 if len(taken) == 2 else 5.5

    monkeypatch.setattr(run, "time", clock)
    rec = SimpleNamespace(prev=SimpleNamespace(time=100.0), step=step)
    run._plain(rec, 1.0, 10.0)  # type: ignore[arg-type]  # duck-typed Recorder
    assert taken == pytest.approx(want)


@pytest.mark.parametrize("after_lines", [0, 1, 4])
def test_sigkill_loses_no_committed_sample(tmp_path: Path, after_lines: int) -> None:
    """SIGKILL a live record after it reported N samples committed (0: while it opens the
    database and takes its first reading, or mid-way through a sample)."""
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen(
        [NETSLEUTH, "record", "--db", str(db), "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen = 0
    if after_lines == 0:
        time.sleep(0.35)  # start-up: imports, schema creation, the first reading
    while seen < after_lines:
        assert proc.stdout.readline().startswith("sample "), "record stopped early"
        seen += 1
    if after_lines:
        time.sleep(0.05 * after_lines)  # somewhere inside a later interval
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    seen += sum(1 for line in proc.stdout if line.startswith("sample "))
    proc.stdout.close()
    if not db.exists():
        assert seen == 0
        return
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    if seen == 0 and not _has_schema(db):
        return  # killed before the schema's transaction committed: an empty database
    got = read(open_db(db, create=False))
    assert len(got.times) >= seen
    assert got.times == sorted(got.times)


def _has_schema(path: Path) -> bool:
    conn = sqlite3.connect(path)
    try:
        return bool(
            conn.execute("SELECT 1 FROM sqlite_master WHERE name='schema_version'").fetchone()
        )
    finally:
        conn.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_sighup_ends_a_record_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen(
        [NETSLEUTH, "record", "--db", str(db), "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for _ in range(2):
        assert proc.stdout.readline().startswith("sample ")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    n = 2 + out.count("sample ")
    assert err.strip() == f"recorded {n} sample(s) to {db}"
    assert len(read(open_db(db, create=False)).times) == n


def test_a_clock_stepping_back_skips_one_interval(tmp_path: Path) -> None:
    w = Writer(open_db(tmp_path / "r.sqlite", create=True))
    future = parse_sample(read_snapshot(HOST128 / "t0"), time.time() + 3600)
    rec = Recorder(w, lambda: read_snapshot(HOST128 / "t1"), None, None, future)
    rec.step([], [])  # now < the previous sample's time: no rate, nothing stored
    assert (rec.n, read(w.db).times) == (0, [])
    rec.step([], [])
    assert rec.n == 1 and len(read(w.db).times) == 1


def test_a_long_recording_is_read_in_bounded_columns(tmp_path: Path) -> None:
    """Each column holds the maximum of its samples, and its time is its last sample's."""
    r, _ = host128()
    w = Writer(open_db(tmp_path / "r.sqlite", create=True))
    n, columns = 103, 10  # 11 samples a column, the last one holding 4
    for i in range(n):
        for c in r.net_rx:
            r.net_rx[c] = float(i % 7)
        r.queues["eth0"][3] = float(i)
        drops = [DropRow("udp_queue_rcv_one_skb", "NO_SOCKET", 0x800, i % 13)]
        w.add(float(i), r, [], drops)
    got = read(w.db, columns)
    assert (got.samples, got.per, len(got.times)) == (n, 11, 10)
    assert got.times == [10.0, 21.0, 32.0, 43.0, 54.0, 65.0, 76.0, 87.0, 98.0, 102.0]
    # 11 consecutive samples always include an i % 7 == 6; the last column's are 99..102.
    assert list(got.cpu["net_rx"][:, 5]) == [6.0] * 9 + [4.0]
    assert list(got.queues["eth0 rx-3"]) == got.times
    # Column k starts at 11k, whose residue mod 13 is 0, 11, 9, 7, 5, 3, 1, 12, 10, 8:
    # 11 consecutive residues from 0 peak at 10, from 1 at 11, otherwise at 12; the last
    # column (99..102) is 8..11.
    assert list(got.drops[("udp_queue_rcv_one_skb", "NO_SOCKET", 0x800)]) == [
        10,
        12,
        12,
        12,
        12,
        12,
        11,
        12,
        12,
        11,
    ]
