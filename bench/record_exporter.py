"""Bytes a record sample of a 128-CPU host takes (tests/fixtures/host128), and what one
exporter scrape costs on this host and on that fixture (median of repeated collections)."""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from netsleuth.exporter.collector import HostCollector
from netsleuth.host.doctor_rules import rate_findings
from netsleuth.host.rates import Rates, rates
from netsleuth.host.sample import Sample, parse_sample
from netsleuth.record.schema import open_db
from netsleuth.record.store import Writer, read
from netsleuth.report.html import MAX_COLUMNS, record_page
from netsleuth.sources.hostfs import Snapshot, read_live, read_snapshot

HOST128 = Path(__file__).parent.parent / "tests" / "fixtures" / "host128"


def noisy(r: Rates, rng: random.Random) -> None:
    """Every rate a distinct random float: the worst case for the blobs' compression."""
    for row in r.softnet.values():
        for col in row:
            row[col] = rng.random() * 1e6
    by_cpu: list[dict[int, float]] = [r.net_rx, r.softirq_pct, *r.queues.values()]
    by_name: list[dict[str, float]] = [r.mib, *r.devices.values()]
    for d in by_cpu:
        for cpu in d:
            d[cpu] = rng.random() * 1e6
    for e in by_name:
        for n in e:
            e[n] = rng.random() * 1e6


def fixture_rates() -> tuple[Rates, Sample]:
    a = parse_sample(read_snapshot(HOST128 / "t0"), 0.0)
    b = parse_sample(read_snapshot(HOST128 / "t1"), 1.0)
    return rates(a, b), b


def bytes_per_sample(n: int = 600, *, worst: bool = False) -> float:
    r, b = fixture_rates()
    rng = random.Random(1)
    findings = rate_findings(r, b)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.sqlite"
        w = Writer(open_db(path, create=True))
        for i in range(n):
            if worst:
                noisy(r, rng)
            w.add(float(i), r, findings)
        w.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        w.db.close()
        return path.stat().st_size / n


def scrape_cost(read: Callable[[], Snapshot], runs: int = 30) -> tuple[float, float]:
    """Median wall and CPU seconds of one scrape (collect + text exposition)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(read))
    generate_latest(registry)  # the first scrape has no previous sample to judge against
    wall, cpu = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.thread_time()
        generate_latest(registry)
        wall.append(time.perf_counter() - w)
        cpu.append(time.thread_time() - c)
    return statistics.median(wall), statistics.median(cpu)


DAY_DB = Path(__file__).parent.parent / ".bench" / "record-day-128cpu.sqlite"


def day_report() -> str:
    """`report` of a day at 1 s on the 128-CPU fixture (the database is built once, cached)."""
    if not DAY_DB.exists():
        DAY_DB.parent.mkdir(exist_ok=True)
        r, _ = fixture_rates()
        tmp = DAY_DB.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        w = Writer(open_db(tmp, create=True))
        w.db.execute("PRAGMA synchronous=OFF")  # building the fixture, not measuring
        rng = random.Random(2)
        for i in range(86400):
            for c in r.net_rx:
                r.net_rx[c] = rng.random() * 1e5
            w.add(float(i), r, [])
        w.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        w.db.close()
        tmp.rename(DAY_DB)
    start = time.perf_counter()
    db = open_db(DAY_DB, create=False)
    rec = read(db, MAX_COLUMNS)
    db.close()
    size = len(record_page(rec, str(DAY_DB)).render().encode())
    took = time.perf_counter() - start
    return (
        f"report of a day at 1 s, 128 CPUs ({DAY_DB.stat().st_size / 1e6:.0f} MB database): "
        f"{took:.1f} s, {size / 1e6:.2f} MB of HTML (< 5 MB: {'met' if size < 5e6 else 'NOT met'})"
    )


def main() -> int:
    for name, reader in (
        ("this host (live)", read_live),
        ("128-CPU fixture", lambda: read_snapshot(HOST128 / "t1")),
    ):
        wall, cpu = scrape_cost(reader)
        share = cpu / 15
        print(
            f"exporter scrape, {name}: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU "
            f"= {100 * share:.2f}% of a CPU at a 15 s interval (< 20 ms and < 1%: "
            f"{'met' if wall < 0.02 and share < 0.01 else 'NOT met'})"
        )
    for worst in (False, True):
        per = bytes_per_sample(worst=worst)
        day = per * 86400 / 1e9
        what = "every rate random (incompressible)" if worst else "fixture rates"
        print(
            f"record, 128-CPU host, 32 queues, {what}: {per:,.0f} bytes a sample; "
            f"a day at 1 s = {day:.2f} GB (< 1 GB: {'met' if day < 1 else 'NOT met'})"
        )
    print(day_report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
