"""The evidence window's bounds: whole batches leave when the window holds more than its
byte cap or when they are older than --before; an evidence file stops at its byte cap and
says so, and ends at the first frame past --after."""

from __future__ import annotations

from pathlib import Path

from netsleuth.capture.batch import RecordBatch
from netsleuth.live.window import NS, EvidenceFile, EvidenceWindow


def batch(first_ts_s: float, n: int = 4, size: int = 100) -> RecordBatch:
    ts = [int((first_ts_s + i * 0.01) * NS) for i in range(n)]
    return RecordBatch.from_packets([bytes([i]) * size for i in range(n)], ts_ns=ts)


def test_window_evicts_by_age_and_by_bytes() -> None:
    w = EvidenceWindow(before_s=1.0, max_bytes=1000)
    w.add(batch(0.0))
    w.add(batch(0.5))
    assert len(w.batches) == 2 and w.nbytes == 800
    w.add(batch(1.2))  # 400 more bytes: over the cap, the oldest goes
    assert [int(b.ts_ns[0]) for b in w.batches] == [int(0.5 * NS), int(1.2 * NS)]
    w.add(batch(3.0))  # the others end more than 1 s before this one's last frame
    assert len(w.batches) == 1 and w.nbytes == 400
    w.add(batch(3.1, size=5000))  # alone over the cap: the newest batch always stays
    assert len(w.batches) == 1 and w.nbytes == 20000


def test_evidence_file_ends_after_and_at_its_cap(tmp_path: Path) -> None:
    f = EvidenceFile(str(tmp_path / "a.pcapng"), "eth0", int(1.0 * NS), 0.5, 10_000)
    f.write(batch(1.0), [], {})
    assert f.open and f.packets == 4
    f.write(batch(1.48), [], {})  # 1.48 to 1.50 written; 1.51 is past the end: closed
    assert not f.open and f.packets == 7 and not f.truncated
    g = EvidenceFile(str(tmp_path / "b.pcapng"), "eth0", int(1.0 * NS), 10.0, 250)
    g.write(batch(1.0), [], {})
    assert g.truncated and not g.open and g.packets == 2
