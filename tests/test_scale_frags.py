"""What a range's worker hands over (scale.Handover): each record's end and timestamp,
and its fragments' fields and bytes one after the other, written to the spill folder as
they come (or kept, for a Dask task); and the parent's batches of those fragments, which
must hold each record's bytes and PAD zero bytes after the last."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from netsleuth import craft
from netsleuth.capture import open_capture
from netsleuth.capture.batch import PAD
from netsleuth.capture.split import Span
from netsleuth.decode import decode
from netsleuth.scale import Frags, Handover, Part, unspill
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


def handed_over(path: Path, spill: Path | None) -> tuple[Part, list[bytes]]:
    """What the file read in small batches hands over (mapped back when spilled), and the
    fragments' own bytes."""
    out = Handover(None if spill is None else str(spill))
    expected = []
    for b in open_capture(str(path), chunk_bytes=1 << 16).batches():
        t = decode(b)
        out.records(b.offset + 100, b.ts_ns)  # any int64 columns, as they come
        out.fragments(t)
        rows = np.flatnonzero(t.outer.is_frag | t.inner_raw.is_frag)
        expected += [b.packet(int(i)) for i in rows]
    ends, ts_ns, frags = out.finish()
    # No InputResult or Summary: unspill() reads neither.
    spilled = None if spill is None else str(spill)
    span = Span(None, 0, final=True)
    part = Part(None, None, [], 0, ends, ts_ns, frags, span, spilled=spilled)  # type: ignore[arg-type]
    return unspill(part), expected


@pytest.mark.parametrize("spilled", [False, True])
def test_fragments_handed_over_are_the_files_records(tmp_path: Path, spilled: bool) -> None:
    path = write(tmp_path / "c.pcap", [(T0 + i, p) for i, p in enumerate(packets())])
    folder = tmp_path / "spill"
    folder.mkdir()
    part, expected = handed_over(path, folder if spilled else None)
    frags = part.frags
    assert len(expected) > 600  # first and last fragments, outer and inside GRE
    assert path.stat().st_size > 3 << 18  # several reader batches (at least 256 KiB each)
    assert not folder.exists() if spilled else list(folder.iterdir()) == []  # mapped, gone
    batches = list(open_capture(str(path), chunk_bytes=1 << 16).batches())
    assert part.ends.tolist() == [o + 100 for b in batches for o in b.offset.tolist()]
    assert part.ts_ns.tolist() == [t for b in batches for t in b.ts_ns.tolist()]
    assert frags.data.shape[0] == sum(map(len, expected)) + PAD
    whole = frags.record_batch()
    assert [whole.packet(i) for i in range(len(whole))] == expected
    assert not whole.buf[-PAD:].any()  # a decoder may read PAD bytes past the last record
    some = frags.rows(10, 60).record_batch()  # a batch of the parent's: a span, no copy
    assert [some.packet(i) for i in range(len(some))] == expected[10:60]
    assert np.shares_memory(some.buf, frags.data)


def test_a_batch_across_a_split_joins_two_ranges_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "c.pcap", [(T0 + i, p) for i, p in enumerate(packets())])
    part, expected = handed_over(path, None)
    frags = part.frags
    n = len(expected)
    joined = Frags.join([frags.rows(n - 5, n), frags.rows(0, 7)])
    b = joined.record_batch()
    assert [b.packet(i) for i in range(len(b))] == expected[n - 5 :] + expected[:7]
    assert b.frame.tolist() == [*frags.frame[n - 5 :].tolist(), *frags.frame[:7].tolist()]
    assert not b.buf[-PAD:].any()


def test_a_range_without_fragments(tmp_path: Path) -> None:
    whole = [craft.ether(craft.ipv4(IS, ID_, bytes(40), 17), 0x0800)] * 20
    path = write(tmp_path / "c.pcap", [(T0 + i, p) for i, p in enumerate(whole)])
    folder = tmp_path / "spill"
    folder.mkdir()
    part, expected = handed_over(path, folder)
    assert expected == [] and part.frags.frame.shape[0] == 0
    assert part.frags.data.shape[0] == PAD and not part.frags.data.any()
    assert len(part.frags.record_batch()) == 0


def test_nothing_is_written_after_the_files_are_closed(tmp_path: Path) -> None:
    out = Handover(str(tmp_path))
    out.close()
    with pytest.raises(ValueError, match="was closed"):
        out.finish()


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="no /proc/self/statm")
def test_replayed_rows_leave_the_parents_memory(tmp_path: Path) -> None:
    """The parent maps a range's fragments (fields and bytes, up to MAX_RANGE of them);
    what each replayed batch used is given back, so it holds a batch's, not the range's."""
    n, size = 1_000_000, 48  # 48 MB of bytes, 45 MB of fields
    folder = tmp_path / "range"
    folder.mkdir()
    (folder / "fragments").write_bytes(bytes(n * size + PAD))
    at = np.arange(n, dtype=np.int64)
    columns = [
        *(at, at, at * size, np.full(n, size), np.full(n, size), at, np.ones(n, np.int32)),
        np.zeros(n, np.uint8),  # direction
        np.zeros(n, np.uint32),  # iface
        np.zeros(n, np.int8),  # fcs_len
    ]
    for k, column in enumerate([at, *columns]):  # ends, then ts_ns and the fields
        (folder / f"column-{k}").write_bytes(column.tobytes())
    empty = np.zeros(0, dtype=np.int64)
    none = Frags(
        *(empty,) * 5, np.zeros(0, np.int32), np.zeros(0, np.uint8), np.zeros(0, np.uint32),
        np.zeros(0, np.int8), np.zeros(0, np.uint8),
    )  # fmt: skip
    # No InputResult or Summary: unspill() reads neither.
    part = Part(None, None, [], 0, empty, empty, none, None, spilled=str(folder))  # type: ignore[arg-type]
    frags = unspill(part).frags
    assert frags.frame[-1] == n - 1 and frags.pos[-1] == (n - 1) * size
    before = resident_mb()
    step = 50_000
    for lo in range(0, n, step):
        rows = frags.rows(lo, lo + step)
        b = rows.record_batch()
        assert int(b.buf[::4096].sum()) == 0 and len(b) == step  # every page read
        assert sum(int(getattr(rows, f).sum()) > 0 for f in ("frame", "wirelen", "ts_ns")) >= 2
        frags.release(lo + step)
    assert resident_mb() - before < 16  # without release(): ~90 MB


def test_a_full_spill_folder_is_a_disk_full_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tmpfs out of room writes less than asked: said as ENOSPC (one line and exit 2 from
    the command line, cliutil), never a range handed over short."""
    import errno

    path = write(tmp_path / "c.pcap", [(T0 + i, p) for i, p in enumerate(packets()[:200])])
    out = Handover(str(tmp_path))
    monkeypatch.setattr(os, "writev", lambda fd, bufs: sum(len(b) for b in bufs) - 1)
    (batch,) = open_capture(str(path)).batches()
    with pytest.raises(OSError) as err:
        out.fragments(decode(batch))
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path)
    out.close()
