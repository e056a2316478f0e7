"""The standing fuzz smoke of issue 13: hypothesis over the bundle reader (tar and gzip),
the /proc and sysfs parsers and rates, CPU lists and masks, the pcapng reader's section,
interface and clock handling, and the pcapng writer read back. Fixed seed (derandomize) and
a small budget in `make test`; `make fuzz` runs the same properties with random seeds and a
large budget (NETSLEUTH_FUZZ_EXAMPLES, NETSLEUTH_FUZZ_RANDOM)."""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsleuth.capture import open_capture
from netsleuth.capture.source import ERF_CHECK
from netsleuth.capture.writer import PcapngWriter
from netsleuth.doctor import diagnose
from netsleuth.errors import InputError
from netsleuth.host.rates import rates
from netsleuth.host.sample import parse_sample
from netsleuth.sources import cpulist
from netsleuth.sources.bundle import read_bundle
from netsleuth.sources.hostfs import FIXED, Snapshot
from tests.capfiles import block, epb, option, shb

EXAMPLES = int(os.environ.get("NETSLEUTH_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("NETSLEUTH_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
READ_ISSUES = {"capture.corrupt_record", "capture.truncated_file"}

# --- /proc and sysfs texts -----------------------------------------------------------------

# Pieces real files are made of, and the pieces that broke them: non-ASCII digits, integers
# over Python's 4,300-digit limit, ranges, masks, markup.
PIECES = st.sampled_from(
    [
        "CPU0",
        "CPU1",
        " ",
        "\n",
        ":",
        "-",
        ",",
        "0",
        "7",
        "ff",
        "٣",
        "²",
        "9" * 4400,
        "0-100000000",
        "eth0-TxRx-",
        "NET_RX",
        "cpu0",
        "[/x]",
        "Ip:",
        "_",
        "\x00",
    ]
)
TEXT = st.one_of(st.text(max_size=200), st.lists(PIECES, max_size=40).map("".join))
PATHS = [
    *FIXED,
    "sys/class/net/eth0/statistics/rx_packets",
    "sys/class/net/eth0/queues/rx-0/rps_cpus",
    "sys/class/net/eth[/x]/queues/rx-٣/rps_cpus",
    "proc/irq/24/smp_affinity_list",
    "ethtool/eth0/statistics",
    "ethtool/eth0/ring",
]


@FUZZ
@given(st.dictionaries(st.sampled_from(PATHS), TEXT, max_size=len(PATHS)), st.floats(0, 10))
def test_proc_parsers_and_rates_never_raise(files: dict[str, str], step: float) -> None:
    a = Snapshot(files=dict(files))
    b = Snapshot(files={k: v + "1" for k, v in files.items()})
    try:
        d = diagnose("fuzz", [(100.0, a), (100.0 + step, b)])
    except InputError as err:
        assert "apart" in str(err)
        return
    for s in d.samples:
        assert all(0 <= c < cpulist.MAX_CPUS for c in s.cpus)
    if d.rates is not None:
        assert all(math.isfinite(v) for r in d.rates.softnet.values() for v in r.values())
    rates(parse_sample(a, 1.0), parse_sample(b, 2.0))


@FUZZ
@given(TEXT)
def test_cpu_lists_and_masks_are_bounded(text: str) -> None:
    for parse in (cpulist.parse_cpu_list, cpulist.parse_cpu_mask):
        try:
            cpus = parse(text)
        except ValueError:
            continue
        assert cpus == sorted(set(cpus))
        assert all(0 <= c < cpulist.MAX_CPUS for c in cpus)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 9000), st.integers(0, 40)), max_size=12))
def test_cpu_list_matches_a_plain_reading(ranges: list[tuple[int, int]]) -> None:
    text = ",".join(f"{lo}-{lo + span}" if span else str(lo) for lo, span in ranges)
    want = sorted({c for lo, span in ranges for c in range(lo, lo + span + 1)})
    if want and want[-1] >= cpulist.MAX_CPUS:
        with pytest.raises(ValueError):
            cpulist.parse_cpu_list(text)
    else:
        assert cpulist.parse_cpu_list(text) == want
        mask = sum(1 << c for c in want)
        assert cpulist.parse_cpu_mask(f"{mask:x}") == want


@FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, 8191), st.integers(0, 600), st.integers(1, 70), st.data()),
        max_size=6,
    )
)
def test_strided_cpu_lists_match_a_plain_reading(
    regions: list[tuple[int, int, int, st.DataObject]],
) -> None:
    # lo-hi:used/group read as bitmap_set_region (lib/bitmap.c) walks it: from each group's
    # start, `used` CPUs, none past hi.
    text, want = [], set()
    for lo, span, group, data in regions:
        hi, used = min(lo + span, 8191), data.draw(st.integers(0, group))
        text.append(f"{lo}-{hi}:{used}/{group}")
        for start in range(lo, hi + 1, group):
            want |= set(range(start, min(start + used, hi + 1)))
    assert cpulist.parse_cpu_list(",".join(text)) == sorted(want)


# --- bundles ---------------------------------------------------------------------------------


def _bundle_tar() -> bytes:
    meta = {
        "format": 1,
        "samples": [{"dir": "samples/0", "time": 1.0}, {"dir": "samples/1", "time": 2.0}],
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in (
            ("meta.json", json.dumps(meta).encode()),
            ("samples/0/proc/stat", b"cpu0 1 2 3 4 5 6 7\n"),
            ("samples/1/proc/stat", b"cpu0 2 3 4 5 6 7 8\n"),
            ("samples/0/proc/net/softnet_stat", b"00000001 00000000 00000000\n"),
            ("samples/1/proc/net/softnet_stat", b"00000002 00000000 00000000\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


BUNDLE = _bundle_tar()
PLAIN = __import__("gzip").decompress(BUNDLE)


@FUZZ
@given(st.data())
def test_mutated_bundles_are_read_or_refused(tmp_path: Path, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from([BUNDLE, PLAIN]))
    raw = bytearray(base)
    for _ in range(data.draw(st.integers(1, 12))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(raw) // 2, len(raw)))
    path = tmp_path / "b.tar.gz"
    path.write_bytes(bytes(raw[:cut]))
    try:
        snaps = read_bundle(path)
        diagnose(str(path), snaps)
    except InputError:
        pass


# --- pcapng: sections, interfaces, clocks ----------------------------------------------------

FRAME = bytes.fromhex("ffffffffffff0200000000010800") + bytes(46)


def _idb_block(order: str, lt: int, res: int, off: int) -> bytes:
    return block(
        order,
        1,
        struct.pack(order + "HHI", lt, 0, 0)
        + option(order, 9, bytes([res]))
        + option(order, 14, struct.pack(order + "q", off))
        + option(order, 0, b""),
    )


BODY = st.one_of(
    st.builds(
        lambda lt, res, off: ("i", lt, res, off),
        st.sampled_from([1, 101, 147, 65535]),
        st.integers(0, 255),
        st.integers(-(1 << 63), (1 << 63) - 1),
    ),
    st.builds(lambda i, ts: ("p", i, ts, 0), st.integers(0, 6), st.integers(0, (1 << 64) - 1)),
)
SECTIONS = st.lists(
    st.tuples(st.sampled_from(["<", ">"]), st.lists(BODY, max_size=12)), min_size=1, max_size=8
)


def _section(order: str, body: list[tuple[str, int, int, int]]) -> bytes:
    out = shb(order)
    for kind, a, b, c in body:
        out += _idb_block(order, a, b, c) if kind == "i" else epb(order, a, b, FRAME)
    return out


@FUZZ
@given(SECTIONS)
def test_pcapng_sections_interfaces_and_clocks(
    tmp_path: Path, sections: list[tuple[str, list[tuple[str, int, int, int]]]]
) -> None:
    """Sections in either byte order, interfaces with any clock, packets naming any id."""
    path = tmp_path / "f.pcapng"
    path.write_bytes(b"".join(_section(order, body) for order, body in sections))
    reader = open_capture(str(path))
    n = sum(len(batch) for batch in reader.batches())
    assert n == sum(1 for _, body in sections for kind, *_ in body if kind == "p")
    assert {i.id for i in reader.issues} <= READ_ISSUES


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, (1 << 63) - 1),
            st.binary(max_size=90),
            st.sampled_from([1, 101, 113, 147]),
            st.text(max_size=30),
        ),
        max_size=20,
    )
)
def test_pcapng_writer_reads_back(packets: list[tuple[int, bytes, int, str]]) -> None:
    out = io.BytesIO()
    w = PcapngWriter(out)
    for ts, data, lt, comment in packets:
        w.packet(ts, data, linktype=lt, comment=comment)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"netsleuth-fuzz-{os.getpid()}.pcapng"
    path.write_bytes(out.getvalue())
    try:
        reader = open_capture(str(path))
        got = [
            (int(b.ts_ns[i]), b.packet(i), int(b.linktype[i]))
            for b in reader.batches()
            for i in range(len(b))
        ]
    finally:
        path.unlink()
    assert got == [(ts, data, lt) for ts, data, lt, _ in packets]
    assert reader.issues == []


# --- ERF: records with any header fields after the 20 good ones Wireshark's test reads -----
def _erf(kind: int, flags: int, rlen: int, wlen: int, body: bytes, *, ts: int = 0) -> bytes:
    """One ERF record as its fields say (rlen need not match the body: that is the point)."""
    return struct.pack("<Q", ts) + struct.pack(">BBHHH", kind, flags, rlen, 0, wlen) + body


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.integers(0, 255),
            st.integers(0, 255),
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFF),
            st.binary(max_size=120),
        ),
        max_size=25,
    ),
    st.binary(max_size=64),
)
def test_erf_records_with_any_fields(
    tmp_path: Path, records: list[tuple[int, int, int, int, bytes]], tail: bytes
) -> None:
    """20 good bare-IPv4 records (so the file is taken for ERF: capture/source.py's
    erf_refusal looks at no more), then records with any type, flags, lengths and extension
    bits: the reader hands out only bytes inside its buffer, names what it cannot read, and
    the decoders take every record."""
    from netsleuth.decode import decode

    good = [_erf(22, 0, 40, 24, bytes(24), ts=k << 32) for k in range(ERF_CHECK)]
    rest = [_erf(*fields, ts=ERF_CHECK << 32) for fields in records]
    path = tmp_path / "f.erf"
    path.write_bytes(b"".join([*good, *rest, tail]))
    reader = open_capture(str(path))
    n = 0
    for b in reader.batches():
        assert (b.offset >= 0).all() and (b.offset + b.caplen <= b.buf.shape[0]).all()
        decode(b)
        n += len(b)
    assert n >= ERF_CHECK
    # A record's loss counter (any value here) names packets the card lost: a finding too.
    assert {i.id for i in reader.issues} <= READ_ISSUES | {"capture.capture_loss"}
