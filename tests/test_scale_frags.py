"""What a range's worker hands over of its fragments (scale.FragBytes): their fields and
their bytes one after the other, written to the spill folder (or kept, for a Dask task),
and the parent's batches of them, which must hold each record's bytes and PAD zero bytes
after the last."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from netsleuth import craft
from netsleuth.capture import open_capture
from netsleuth.capture.batch import PAD
from netsleuth.decode import decode
from netsleuth.scale import FragBytes, Frags, Part, _no_frags, _spill, _unspill
from tests.splitutil import ID_, IS, write

T0 = 1_700_000_000 * 10**9


def packets() -> list[bytes]:
    """Fragments (some inside GRE) between whole packets of many sizes."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(1200):
        size = int(rng.integers(20, 1400))
        whole = craft.ipv4(IS, ID_, craft.udp(IS, ID_, 1, 2, bytes(size)), 17, ident=i)
        out.append(craft.ether(whole, 0x0800))
        if i % 3 == 0:
            train = craft.fragment_ipv4(IS, ID_, rng.bytes(size + 100), 17, sizes=[64, 0], ident=i)
            out += [craft.ether(p, 0x0800) for p in train]
        if i % 7 == 0:
            frag = craft.fragment_ipv4(IS, ID_, bytes(200), 17, sizes=[96, 0], ident=i)[0]
            out.append(craft.ether(craft.ipv4(IS, ID_, craft.gre(frag, 0x0800), 47), 0x0800))
    return out


def handed_over(path: Path, spill: Path | None) -> tuple[Frags, list[bytes]]:
    """The FragBytes of the file read in small batches, and the fragments' own bytes."""
    out = FragBytes(None if spill is None else str(spill / "fragments"))
    expected = []
    for b in open_capture(str(path), chunk_bytes=1 << 16).batches():
        t = decode(b)
        out.add(t)
        rows = np.flatnonzero(t.outer.is_frag | t.inner_raw.is_frag)
        expected += [b.packet(int(i)) for i in rows]
    return out.finish(), expected


@pytest.mark.parametrize("spilled", [False, True])
def test_fragments_handed_over_are_the_files_records(tmp_path: Path, spilled: bool) -> None:
    path = write(tmp_path / "c.pcap", [(T0 + i, p) for i, p in enumerate(packets())])
    folder = tmp_path / "spill"
    folder.mkdir()
    frags, expected = handed_over(path, folder if spilled else None)
    assert len(expected) > 600  # first and last fragments, outer and inside GRE
    assert path.stat().st_size > 3 << 18  # several reader batches (at least 256 KiB each)
    if spilled:
        empty = np.zeros(0, dtype=np.int64)
        part = Part(None, None, [], 0, empty, empty, frags, None)  # type: ignore[arg-type]
        part = _unspill(_spill(part, str(folder)))
        frags = part.frags
        assert not folder.exists()  # the files and their folder go once mapped
    assert frags.data.shape[0] == sum(map(len, expected)) + PAD
    whole = frags.record_batch()
    assert [whole.packet(i) for i in range(len(whole))] == expected
    assert not whole.buf[-PAD:].any()  # a decoder may read PAD bytes past the last record
    some = frags.rows(10, 60).record_batch()  # a batch of the parent's: a span, no copy
    assert [some.packet(i) for i in range(len(some))] == expected[10:60]
    assert np.shares_memory(some.buf, frags.data)


def test_a_batch_across_a_split_joins_two_ranges_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "c.pcap", [(T0 + i, p) for i, p in enumerate(packets())])
    frags, expected = handed_over(path, None)
    n = len(expected)
    joined = Frags.join([frags.rows(n - 5, n), frags.rows(0, 7)])
    b = joined.record_batch()
    assert [b.packet(i) for i in range(len(b))] == expected[n - 5 :] + expected[:7]
    assert b.frame.tolist() == [*frags.frame[n - 5 :].tolist(), *frags.frame[:7].tolist()]
    assert not b.buf[-PAD:].any()


def test_a_range_without_fragments(tmp_path: Path) -> None:
    whole = [craft.ether(craft.ipv4(IS, ID_, bytes(40), 17), 0x0800)] * 20
    path = write(tmp_path / "c.pcap", [(T0 + i, p) for i, p in enumerate(whole)])
    frags, expected = handed_over(path, tmp_path)
    assert expected == [] and frags.frame.shape[0] == 0
    assert os.path.getsize(tmp_path / "fragments") == PAD
    assert len(frags.record_batch()) == 0


def test_nothing_is_written_after_the_file_is_closed(tmp_path: Path) -> None:
    out = FragBytes(str(tmp_path / "fragments"))
    out.close()
    with pytest.raises(ValueError, match="was closed"):
        out.finish()


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="no /proc/self/statm")
def test_replayed_rows_leave_the_parents_memory(tmp_path: Path) -> None:
    """The parent maps a range's fragment bytes (up to MAX_RANGE); the rows of each batch
    it has replayed are given back, so it holds one batch's, not the range's."""
    n, size = 40_000, 1600  # 64 MB of fragment bytes
    folder = tmp_path / "range"
    folder.mkdir()
    with open(folder / "fragments", "wb") as fh:
        fh.write(bytes(n * size + PAD))
    for k in range(8):  # the columns _unspill maps beside the bytes
        np.save(folder / f"column-{k}.npy", np.zeros(n, np.int32 if k == 7 else np.int64))
    empty = np.zeros(0, dtype=np.int64)
    part = Part(None, None, [], 0, empty, empty, _no_frags(), None, spilled=str(folder))  # type: ignore[arg-type]
    frags = _unspill(part).frags
    frags = Frags.of(
        [
            np.arange(n),
            np.arange(n) * size,
            np.full(n, size),
            np.full(n, size),
            np.zeros(n, np.int64),
            np.ones(n, np.int32),
        ],
        frags.data,
    )
    before = resident_mb()
    for lo in range(0, n, 4000):
        rows = frags.rows(lo, lo + 4000)
        assert int(rows.record_batch().buf[::4096].sum()) == 0  # every page read
        rows.release()
    assert resident_mb() - before < 16  # without release(): the whole 64 MB
