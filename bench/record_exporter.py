"""Bytes a record sample of a 128-CPU host takes (tests/fixtures/host128), and what one
exporter scrape costs on this host and on that fixture (median of repeated collections)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from netsleuth.host.doctor_rules import rate_findings
from netsleuth.host.rates import Rates, rates
from netsleuth.host.sample import parse_sample
from netsleuth.record.schema import open_db
from netsleuth.record.store import Writer
from netsleuth.sources.hostfs import read_snapshot

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


def bytes_per_sample(n: int = 600, *, worst: bool = False) -> float:
    a = parse_sample(read_snapshot(HOST128 / "t0"), 0.0)
    b = parse_sample(read_snapshot(HOST128 / "t1"), 1.0)
    r = rates(a, b)
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


def main() -> int:
    for worst in (False, True):
        per = bytes_per_sample(worst=worst)
        day = per * 86400 / 1e9
        what = "every rate random (incompressible)" if worst else "fixture rates"
        print(
            f"record, 128-CPU host, 32 queues, {what}: {per:,.0f} bytes a sample; "
            f"a day at 1 s = {day:.2f} GB (< 1 GB: {'met' if day < 1 else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
