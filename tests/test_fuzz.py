"""Hostile input: random and mutated captures never raise, hang or run away, and the C
record walk agrees with a plain Python reading of the format."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsleuth.capture import RecordBatch, _framing, open_capture
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.decode import REGISTRY, decode
from netsleuth.decode.table import IP_FIELDS, NS, PacketTable
from netsleuth.errors import InputError
from netsleuth.findings.catalogue import CATALOGUE
from tests.capfiles import epb, idb, pcap_bytes, shb
from tests.realframes import wifi_captures

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LINKTYPES = sorted({b.key for b in REGISTRY.bindings if b.ns == NS.LINKTYPE} | {147, 65535})


def _seed_frames() -> list[bytes]:
    frames = [f for _, f in incidents.incident1_poison_fragment(normal=3)]
    frames += [f for _, f in incidents.incident2_stp_llc(seconds=2)][:3]
    frames += [f for _, f in mixed_capture(60, seed=5)]
    return frames


SEEDS = _seed_frames()
# Monitor-mode frames (radiotap, bare 802.11) with their link types, for the compiled pass's
# Wi-Fi twins.
WIFI = [(lt, f) for lt, fs in wifi_captures().values() if lt in (105, 127) for f in fs]


def _columns(t: PacketTable) -> dict[str, np.ndarray]:
    cols = {k: v for k, v in vars(t).items() if isinstance(v, np.ndarray)}
    for layer in ("outer", "inner_raw"):
        cols |= {f"{layer}.{f}": getattr(getattr(t, layer), f) for f in IP_FIELDS}
    return cols


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=40), st.sampled_from(LINKTYPES))
def test_random_frames_decode_without_raising(frames: list[bytes], linktype: int) -> None:
    t = decode(RecordBatch.from_packets(frames, linktype=linktype))
    assert t.n == len(frames)
    assert (t.ns == NS.DONE).all()  # every packet's descent ended
    assert (t.pos <= t.end).all()  # never past the bytes it had


@FUZZ
@given(st.data())
def test_mutated_real_frames_decode_without_raising(data: st.DataObject) -> None:
    frames = []
    for _ in range(data.draw(st.integers(1, 20))):
        f = bytearray(data.draw(st.sampled_from(SEEDS)))
        for _ in range(data.draw(st.integers(0, 6))):
            f[data.draw(st.integers(0, len(f) - 1))] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(f)))
        frames.append(bytes(f[:cut]))
    t = decode(RecordBatch.from_packets(frames), tunnel_depth=data.draw(st.integers(0, 4)))
    assert (t.ns == NS.DONE).all()
    assert (t.pos <= t.end).all()


@FUZZ
@given(st.data())
def test_mutated_wifi_frames_decode_alike_both_ways(data: st.DataObject) -> None:
    """The compiled pass's radiotap, 802.11 and LLC steps write what the NumPy decoders
    write, on mutated and cut monitor-mode frames."""
    linktype = data.draw(st.sampled_from([105, 127]))
    seeds = [f for lt, f in WIFI if lt == linktype]
    frames = []
    for _ in range(data.draw(st.integers(1, 20))):
        f = bytearray(data.draw(st.sampled_from(seeds)))
        for _ in range(data.draw(st.integers(0, 6))):
            f[data.draw(st.integers(0, len(f) - 1))] = data.draw(st.integers(0, 255))
        frames.append(bytes(f[: data.draw(st.integers(0, len(f)))]))
    # On the wire at least as long as captured: snapped, or not.
    wire = [len(f) + data.draw(st.sampled_from([0, 0, 1, 4, 100])) for f in frames]
    batch = RecordBatch.from_packets(frames, linktype=linktype, wirelen=wire)
    a, b = _columns(decode(batch)), _columns(decode(batch, prefix=False))
    assert [k for k in a if not np.array_equal(a[k], b[k])] == []


@FUZZ
@given(st.data())
def test_mutated_capture_files_read_without_raising(tmp_path: Path, data: st.DataObject) -> None:
    frames = data.draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=15))
    if data.draw(st.booleans()):
        raw = bytearray(
            pcap_bytes([(1, 0, f) for f in frames], order=data.draw(st.sampled_from(["<", ">"])))
        )
    else:
        raw = bytearray(
            shb() + idb("<", 1) + b"".join(epb("<", 0, i, f) for i, f in enumerate(frames))
        )
    for _ in range(data.draw(st.integers(0, 8))):
        raw[data.draw(st.integers(4, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(24, len(raw)))]
    path = tmp_path / "fuzz.cap"
    path.write_bytes(bytes(raw))
    try:
        reader = open_capture(str(path), chunk_bytes=1 << 12)
    except InputError as err:  # the first section header mutated past reading: exit 2
        assert "pcapng section header" in str(err)
        return
    got = 0
    for batch in reader.batches():
        t = decode(batch)
        assert (t.ns == NS.DONE).all()
        got += len(batch)
    assert got <= len(frames) + len(raw) // 16
    assert {i.id for i in reader.issues} <= set(CATALOGUE)


def walk_reference(buf: bytes, swapped: bool, max_caplen: int) -> tuple[list[int], int, int]:
    """The pcap record walk straight from the format: header, caplen at +8, data."""
    order = ">" if swapped else "<"
    pos = 0
    out: list[int] = []
    while len(buf) - pos >= 16:
        (caplen,) = struct.unpack_from(order + "I", buf, pos + 8)
        if caplen > max_caplen:
            return out, pos, 2
        if caplen > len(buf) - pos - 16:
            break
        out.append(pos)
        pos += 16 + caplen
    return out, pos, 0


@FUZZ
@given(
    st.lists(st.integers(0, 120), max_size=60),
    st.booleans(),
    st.integers(0, 40),
    st.binary(max_size=20),
    st.floats(0, 1),
)
def test_c_walk_matches_reference(
    lens: list[int], swapped: bool, bad_at: int, tail: bytes, cut: float
) -> None:
    order = ">" if swapped else "<"
    parts: list[bytes] = []
    for i, n in enumerate(lens):
        caplen = 1_000_000 if i == bad_at else n
        parts += (struct.pack(order + "IIII", i, 0, caplen, n), bytes(min(n, caplen)))
    recs = b"".join([*parts, tail])
    buf = np.frombuffer(recs, dtype=np.uint8)
    out = np.empty((4, 1 << 10), dtype=np.int64)
    n, pos, status = _framing.walk_pcap(
        buf.data, 0, len(recs), swapped, 262144, 1000, out.data, 16, 0
    )
    want, want_pos, want_status = walk_reference(recs, swapped, 262144)
    assert (list(out[0, :n] - 16), pos, status) == (want, want_pos, want_status)
    assert list(out[1, :n]) == [lens[i] for i in range(n)]
    assert list(out[3, :n]) == [i * 1_000_000_000 for i in range(n)]
    # In two steps, as a buffer's pieces arrive (chunks.Walk): the bytes up to the cut,
    # then on from where the walk stopped, listing from where it left off.
    again = np.zeros_like(out)
    end = int(cut * len(recs))
    k, at, first = _framing.walk_pcap(buf.data, 0, end, swapped, 262144, 1000, again.data, 16, 0)
    if first == 0:
        m, at, first = _framing.walk_pcap(
            buf.data, at, len(recs), swapped, 262144, 1000, again.data, 16, k
        )
        k += m
    assert (k, at, first) == (n, pos, status)
    assert (again[:, :n] == out[:, :n]).all()
