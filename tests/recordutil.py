"""A small real record database for the report tests."""

from __future__ import annotations

from pathlib import Path

from netsleuth.host.doctor_rules import rate_findings
from netsleuth.host.rates import rates
from netsleuth.host.sample import parse_sample
from netsleuth.record.schema import open_db
from netsleuth.record.store import Writer
from netsleuth.sources.hostfs import read_snapshot

HOST128 = Path(__file__).parent / "fixtures" / "host128"


def recorded(path: Path) -> Path:
    """A real recording of the 128-CPU fixture: two samples, one with findings."""
    a = parse_sample(read_snapshot(HOST128 / "t0"), 0.0)
    b = parse_sample(read_snapshot(HOST128 / "t1"), 1.0)
    r = rates(a, b)
    w = Writer(open_db(path, create=True))
    w.meta(host="h", kernel="6.1", created_by="test", interval="1")
    w.add(1_700_000_000.0, r, rate_findings(r, b))
    w.add(1_700_000_001.0, r, rate_findings(r, b))
    w.db.close()
    return path
