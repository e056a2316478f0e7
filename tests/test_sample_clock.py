"""Sampling loops: on a stepped wall clock, watch's rates and pauses and doctor's (and
collect's) sample times follow the monotonic clock; and what doctor and collect hold does
not grow with the number of samples."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

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


@pytest.mark.parametrize("command", ["doctor", "collect"])
def test_memory_does_not_grow_with_the_samples(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 samples of 400 kB each (a 512-CPU host's is ~2.5 MB): doctor keeps its first and
    last, collect writes each as it comes, so what Python holds at its peak is a few
    samples, where holding them all was 24 MB (collect: twice that, encoded)."""
    from netsleuth import doctor
    from netsleuth.sources.bundle import read_bundle
    from netsleuth.sources.hostfs import Snapshot

    taken: list[int] = []

    def read_live(root: Path = Path("/")) -> Snapshot:
        taken.append(1)
        return Snapshot(files={"proc/bulk": f"{len(taken)}\n" + "x" * 400_000})

    monkeypatch.setattr(doctor, "read_live", read_live)
    monkeypatch.setattr(doctor, "time", SteppedClock())  # no real sleeps
    tracemalloc.start()
    try:
        if command == "doctor":
            d = doctor.doctor_live(60, 1.0)
        else:
            n = doctor.collect(tmp_path / "b.tar.gz", 60, 1.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(taken) == 60
    assert peak < 8 << 20
    if command == "doctor":
        assert d.count == 60 and [s.time for s in d.samples] == sorted(s.time for s in d.samples)
    else:
        got = read_bundle(tmp_path / "b.tar.gz")
        assert n == 60 == len(got)
        assert [snap.files["proc/bulk"].split("\n", 1)[0] for _, snap in got] == [
            str(k) for k in range(1, 61)
        ]


@pytest.mark.parametrize("name", ["b.tar.gz", "b"])
def test_a_collect_stopped_midway_leaves_nothing(name: str, tmp_path: Path) -> None:
    """A signal (KeyboardInterrupt here) after two samples: neither the bundle nor the
    folder it was being built in is left, as a .tar.gz or as a directory."""
    from netsleuth.sources.bundle import read_bundle, write_bundle
    from netsleuth.sources.hostfs import Snapshot

    def samples() -> Iterator[tuple[float, Snapshot]]:
        for k in range(2):
            yield 100.0 + k, Snapshot(files={"proc/stat": f"cpu {k}\n"})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_bundle(tmp_path / name, samples(), {"host": "t"})
    assert list(tmp_path.iterdir()) == []
    # Completed, into a folder already there: its files replaced, meta.json listing both.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "meta.json").write_text("old")
    two = [(100.0 + k, Snapshot(files={"proc/stat": f"cpu {k}\n"})) for k in range(2)]
    assert write_bundle(tmp_path / name, two, {"host": "t"}) == 2
    assert [t for t, _ in read_bundle(tmp_path / name)] == [100.0, 101.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name, "b"})


def test_collect_refuses_more_samples_than_a_bundle_holds(tmp_path: Path) -> None:
    """--duration 2000 at --interval 0.1 is 20,001 samples; doctor --bundle reads 10,000 at
    most: refused before sampling, one line, exit 2, no file."""
    from tests import clirun

    out = tmp_path / "b.tar.gz"
    ran = clirun.invoke(
        "collect", "-o", str(out), "--duration", "2000", "--interval", "0.1", code=2
    )
    assert ran.err_lines() == [
        "netsleuth: --duration: 20001 samples at --interval 0.1: a bundle holds at most 10000 "
        "(use a longer --interval, or `netsleuth record` for long series)"
    ]
    assert not out.exists()


def test_collect_refuses_at_the_first_sample_a_bundle_doctor_could_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host whose sample is 3,000 files in one folder (about 200 devices): doctor --bundle
    reads 200,000 members, meta.json one of them, and collect counts each sample's folders
    too (the folder reader counts them; the sample's own two, spare): 3,003 entries, so 66
    samples fit (3,003 x 66 + 1 = 198,199) and 67 do not (201,202): refused after the
    first, nothing written. At the edge, with the bound at 2,000 to keep this quick,
    samples of 30 files (33 entries) fit 60 times (1,981), written whole and read back as a
    tar and as a folder, and 61 are refused."""
    from netsleuth import doctor
    from netsleuth.errors import InputError
    from netsleuth.sources import bundle
    from netsleuth.sources.hostfs import Snapshot

    taken: list[int] = []
    files = [3000]

    def read_live(root: Path = Path("/")) -> Snapshot:
        taken.append(1)
        return Snapshot(files={f"sys/d{k}": "1" for k in range(files[0])})

    monkeypatch.setattr(doctor, "read_live", read_live)
    monkeypatch.setattr(doctor, "time", SteppedClock())
    with pytest.raises(InputError, match=r"3003 entries, .*: 67 of them .* at most 66 fit"):
        doctor.collect(tmp_path / "b.tar.gz", 67, 1.0)
    assert taken == [1]
    assert list(tmp_path.iterdir()) == []
    files[0] = 30
    monkeypatch.setattr(bundle, "MAX_MEMBERS", 2000)
    with pytest.raises(InputError, match=r"33 entries, .*: 61 of them .* at most 60 fit"):
        doctor.collect(tmp_path / "b", 61, 1.0)
    for name in ("b.tar.gz", "b"):
        assert doctor.collect(tmp_path / name, 60, 1.0) == 60
        assert len(bundle.read_bundle(tmp_path / name)) == 60


@pytest.mark.parametrize("name", ["b.tar.gz", "b"])
def test_folders_and_names_tarfile_writes_twice_are_counted_as_the_reader_counts(
    name: str, tmp_path: Path
) -> None:
    """A sample of 55,000 files, each in a folder of its own (/proc/irq/N/...): two of them
    are 110,000 files, which collect let through, but the folder reader counts the folders
    too, 110,004 entries a sample (with proc/, irq/ and the sample's own two, spare), so
    doctor --bundle refused the two: now refused at the first sample. And each of 20 files
    under a device named with a non-ASCII letter costs two members, as tarfile writes a
    PAX header before it and the tar reader counts both (helper-53)."""
    from netsleuth.errors import InputError
    from netsleuth.sources import bundle
    from netsleuth.sources.hostfs import Snapshot

    irqs = Snapshot(files={f"proc/irq/{k}/smp_affinity_list": "0" for k in range(55_000)})
    with pytest.raises(InputError, match=r"110004 entries, .*: 2 of them .* at most 1 fit"):
        bundle.write_bundle(tmp_path / name, [(1.0, irqs), (2.0, irqs)], {}, planned=2)
    assert list(tmp_path.iterdir()) == []
    wlan = Snapshot(files={f"sys/class/net/wl\u00e4n0/f{k}": "1" for k in range(20)})
    assert bundle._Room.cost(list(bundle._sample_files(0, wlan)))[0] == 20 + 20 + 6


@pytest.mark.parametrize("name", ["b.tar.gz", "b"])
def test_a_host_that_grows_past_the_room_midway_keeps_the_samples_that_fit(
    name: str, tmp_path: Path
) -> None:
    """Two samples of one file, then one of 199,999 files (2 + 199,999 + meta.json passes
    200,000 members): the bundle is the first two, and doctor --bundle reads it."""
    from netsleuth.sources.bundle import read_bundle, write_bundle
    from netsleuth.sources.hostfs import Snapshot

    def samples() -> Iterator[tuple[float, Snapshot]]:
        for k in range(2):
            yield 100.0 + k, Snapshot(files={"proc/stat": f"cpu {k}\n"})
        yield 102.0, Snapshot(files={f"sys/d{k}": "1" for k in range(199_999)})
        yield 103.0, Snapshot(files={"proc/stat": "cpu 3\n"})

    assert write_bundle(tmp_path / name, samples(), {"host": "t"}, planned=4) == 2
    assert [t for t, _ in read_bundle(tmp_path / name)] == [100.0, 101.0]
