"""What a range's worker hands over instead of its fragments' bytes: where each record is
in the file (RecordBatch.base + offset), and the parent's batch of them mapped from the
file (scale.mapped_batch), which must hold the file's bytes record for record."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from netsleuth.capture import open_capture
from netsleuth.capture.batch import PAD
from netsleuth.decode import decode
from netsleuth.errors import InputError
from netsleuth.scale import Frags, mapped_batch
from tests.splitutil import write, write_pcapng

T0 = 1_700_000_000 * 10**9


def frames(n: int) -> list[tuple[int, bytes]]:
    rng = np.random.default_rng(7)
    return [
        (T0 + i, rng.integers(0, 256, int(rng.integers(14, 1500)), np.uint8).tobytes())
        for i in range(n)
    ]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_a_batch_says_where_its_records_are_in_the_file(tmp_path: Path, kind: str) -> None:
    packets = frames(3000)
    path = tmp_path / f"c.{kind}"
    (write if kind == "pcap" else write_pcapng)(path, packets)
    data = path.read_bytes()
    batches = list(open_capture(str(path), chunk_bytes=1 << 16).batches())
    assert len(batches) > 5  # records carried from one buffer into the next
    got = [
        data[b.base + o : b.base + o + c]
        for b in batches
        for o, c in zip(b.offset.tolist(), b.caplen.tolist(), strict=True)
    ]
    assert got == [p for _, p in packets]


def test_a_decompressed_batch_has_no_file_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "c.pcap", frames(10))
    gz = tmp_path / "c.pcap.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    (batch,) = open_capture(str(gz)).batches()
    assert batch.base == -1
    with pytest.raises(ValueError, match="file's own bytes"):
        Frags.of(decode(batch))


def test_mapped_batches_hold_the_files_bytes_to_its_last_record(tmp_path: Path) -> None:
    packets = frames(400)
    path = write(tmp_path / "c.pcap", packets)
    whole = [b for b in open_capture(str(path)).batches()]
    base = whole[0].base
    offset = np.concatenate([b.offset + b.base - base for b in whole])
    caplen = np.concatenate([b.caplen for b in whole])
    for rows in ([3, 4, 90], [0], [150, 399], [399]):  # 399: the file's last record
        sel = np.array(rows)
        f = Frags(
            sel + 1,
            base + offset[sel],
            caplen[sel],
            caplen[sel],
            np.full(sel.shape[0], T0),
            np.ones(sel.shape[0], np.int32),
        )
        batch = mapped_batch(str(path), f)
        assert [batch.packet(i) for i in range(len(rows))] == [packets[r][1] for r in rows]
        assert batch.frame.tolist() == [r + 1 for r in rows]
        last = int(batch.offset[-1] + batch.caplen[-1])
        assert batch.buf.shape[0] == last + PAD  # a decoder may read PAD bytes past a record
        if rows[-1] == 399:
            assert not batch.buf[last:].any()  # past the file's end: zeros, as the reader has
        assert not batch.buf.flags.writeable or rows[-1] == 399


def test_a_file_that_shrank_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.pcap", frames(20))
    (batch,) = open_capture(str(path)).batches()
    at = batch.base + batch.offset
    whole = Frags(batch.frame, at, batch.caplen, batch.wirelen, batch.ts_ns, batch.linktype)
    with open(path, "r+b") as fh:
        fh.truncate(int(at[-1]) + 3)
    with pytest.raises(InputError, match="shrank"):
        mapped_batch(str(path), whole)
