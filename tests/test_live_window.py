"""The evidence window's bounds: whole batches leave when the window holds more than its
byte cap or when they are older than --before; an evidence file stops at its byte cap and
says so, and ends at the first frame past --after. --rotate SIZE|SECONDS: parsed or refused,
a trigger's evidence split over files at the size or time, the oldest files removed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netsleuth.capture.batch import RecordBatch
from netsleuth.capture.ring import KernelStats, RingConfig
from netsleuth.craft import incidents
from netsleuth.errors import InputError
from netsleuth.live.cli import rotation
from netsleuth.live.vigil import LiveOptions, Vigil
from netsleuth.live.window import NS, EvidenceFile, EvidenceWindow, Part, Rotation
from netsleuth.scan import scan


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
    f = EvidenceFile(lambda: str(tmp_path / "a.pcapng"), "eth0", int(1.0 * NS), 0.5, 10_000)
    f.write(batch(1.0), [], {})
    assert f.open and f.packets == 4
    f.write(batch(1.48), [], {})  # 1.48 to 1.50 written; 1.51 is past the end: closed
    assert not f.open and f.packets == 7 and not f.truncated
    g = EvidenceFile(lambda: str(tmp_path / "b.pcapng"), "eth0", int(1.0 * NS), 10.0, 250)
    g.write(batch(1.0), [], {})
    assert g.truncated and not g.open and g.packets == 2


def count(path: str) -> int:
    return scan([path]).inputs[0].packets


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("100MB", Rotation(max_bytes=100_000_000)),
        ("64MiB", Rotation(max_bytes=64 << 20)),
        ("1.5gb", Rotation(max_bytes=1_500_000_000)),
        ("30s", Rotation(max_seconds=30)),
        ("5m", Rotation(max_seconds=300)),
        ("2h", Rotation(max_seconds=7200)),
    ],
)
def test_rotate_parses_a_size_or_a_time(text: str, want: Rotation) -> None:
    assert rotation(text, None, "ev.pcapng") == want
    assert rotation(text, 3, "ev.pcapng") == Rotation(want.max_bytes, want.max_seconds, 3)


@pytest.mark.parametrize(
    ("text", "files", "export", "says"),
    [
        ("5", None, "e.pcapng", "give a size (100MB, 64MiB) or a time"),
        ("MB", None, "e.pcapng", "give a size"),
        ("10parsecs", None, "e.pcapng", "give a size"),
        ("-5s", None, "e.pcapng", "give a size"),
        ("0MB", None, "e.pcapng", "from 64 KiB to 1 TiB"),
        ("2TB", None, "e.pcapng", "from 64 KiB to 1 TiB"),
        ("0.5s", None, "e.pcapng", "from 1 s to 7 days"),
        ("8000h", None, "e.pcapng", "from 1 s to 7 days"),
        ("30s", None, None, "give --export"),
        (None, 4, "e.pcapng", "goes with --rotate"),
    ],
)
def test_rotate_refuses_absurd_values(
    text: str | None, files: int | None, export: str | None, says: str
) -> None:
    with pytest.raises(InputError, match=re.escape(says)) as err:
        rotation(text, files, export)
    assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_a_trigger_goes_on_in_the_next_file_at_size_and_time(tmp_path: Path) -> None:
    paths = iter(str(tmp_path / f"r-{n}.pcapng") for n in range(1, 100))
    closed: list[Part] = []
    by_size = Rotation(max_bytes=1000)
    f = EvidenceFile(
        lambda: next(paths), "eth0", 0, 100.0, 1 << 20, rotation=by_size, on_close=closed.append
    )
    for k in range(5):
        f.write(batch(1.0 + k * 0.05, size=300), [], {})  # 4 frames of 300 bytes each time
    f.close()
    # A file is closed before the frame that follows once it holds >= 1000 bytes: the
    # pcapng header and IDB, then 3 blocks of 300 bytes + comment + 32 bytes of header.
    assert [p.packets for p in closed] == [3, 3, 3, 3, 3, 3, 2]
    assert [p.part for p in closed] == list(range(1, 8))
    assert [count(p.path) for p in closed] == [p.packets for p in closed]
    assert all(1000 <= Path(p.path).stat().st_size < 1000 + 400 for p in closed[:-1])
    closed.clear()
    by_time = Rotation(max_seconds=1)
    g = EvidenceFile(
        lambda: next(paths), "eth0", 0, 100.0, 1 << 20, rotation=by_time, on_close=closed.append
    )
    for k in range(5):  # frames at 1.00-1.03, 1.50.., 2.00.., 2.50.., 3.00..
        g.write(batch(1.0 + k * 0.5), [], {})
    g.close()
    assert [p.packets for p in closed] == [8, 8, 4]  # [1.0, 2.0), [2.0, 3.0), [3.0, ...)
    assert [p.first_ts for p in closed] == [1 * NS, 2 * NS, 3 * NS]


def test_every_trigger_gets_a_file_and_the_oldest_go(tmp_path: Path) -> None:
    """Four triggers (incident 1's poison pair, 10 s apart) with --rotate-files 2: files
    1 to 4 written, 1 and 2 removed from disk and marked so."""
    cap = [f for _, f in incidents.incident1_poison_fragment()]
    rot = Rotation(max_bytes=1 << 20, max_files=2)
    opts = LiveOptions("eth0", export=str(tmp_path / "ev.pcapng"), rotation=rot, after=1.0)
    events: list[dict[str, object]] = []
    v = Vigil(opts, events.append)
    for k in range(4):
        t0 = (100 + 10 * k) * NS
        b = RecordBatch.from_packets(cap, ts_ns=[t0 + i * 1000 for i in range(len(cap))])
        b.frame[:] = range(k * len(cap) + 1, (k + 1) * len(cap) + 1)
        v.batch(b)
    v.end_evidence()
    names = [str(tmp_path / f"ev-{n}.pcapng") for n in range(1, 5)]
    written = [e for e in events if e["event"] == "evidence"]
    assert [(e["path"], e["packets"]) for e in written] == [(n, len(cap)) for n in names]
    assert [e["path"] for e in events if e["event"] == "evidence_removed"] == names[:2]
    assert [Path(n).exists() for n in names] == [False, False, True, True]
    assert [e["path"] for e in v.files] == names[2:]  # the report lists what is on disk
    assert v.files[0]["trigger"] == ["ipv4.fragment.zero_length"]


def test_the_cli_refuses_a_bare_number_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Before any socket: no root needed, exit 2, one line."""
    from netsleuth.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["scan", "--live", "lo", "--export", "/nonexistent/e.pcapng", "--rotate", "5"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "netsleuth: --rotate: '5': give a size (100MB, 64MiB) or a time (30s, 5m, 1h)\n"
    )


class HeldRing:
    """A ring the kernel filled while the run was stopped: these batches ready, one a
    read_ready call (as RingReader hands out up to 8 blocks a call), in a ring of 16
    blocks."""

    def __init__(self, batches: list[RecordBatch]) -> None:
        self.ready = list(batches)
        self.config = RingConfig(blocks=16)
        self.totals = KernelStats()

    def read_ready(self) -> RecordBatch | None:
        return self.ready.pop(0) if self.ready else None

    def wait(self, timeout_ms: int) -> None:
        pass

    def read_stats(self) -> KernelStats:
        return self.totals


def test_a_run_past_its_end_reads_what_the_ring_holds() -> None:
    """A run whose --duration (or a signal) is over before it reads (stopped, starved)
    reads the batches the ring holds before its report: the frames checked are those the
    socket counted. Before, three batches of incident 1 were left unread: 0 packets."""
    cap = [f for _, f in incidents.incident1_poison_fragment()]
    ring = HeldRing([RecordBatch.from_packets(cap) for _ in range(3)])
    v = Vigil(LiveOptions("eth0", duration=0.0), lambda _: None)
    result = v.run(ring, lambda: True)  # type: ignore[arg-type]  # a RingReader's face
    assert result.inp.packets == 3 * len(cap) and not ring.ready
    # A link that keeps the ring full cannot keep the run going: one pass over its 16
    # blocks at most (16 // 8 + 1 reads), then the report.
    busy = HeldRing([RecordBatch.from_packets(cap) for _ in range(100)])
    v = Vigil(LiveOptions("eth0", duration=0.0), lambda _: None)
    assert v.run(busy, lambda: True).inp.packets == 3 * len(cap)  # type: ignore[arg-type]
