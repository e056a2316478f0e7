"""Verdicts do not depend on where the reader's batches end.

The reader hands the checks 4 MiB buffers of records; nothing a user sees should change
with that size. The stateful checks make it so by deciding per fragment, not per batch:
a fragment more than 30 s after its datagram's first starts a new datagram in the
fragment audit and in the outer reassembly alike, so a batch end (where both also expire
what is stale) changes when state is let go, never a verdict. Here the same captures are
read with 64 KiB buffers (dozens of batches) and with the default (one or two), and every
finding must be the same: ids, counts, frame lists and evidence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netsleuth import craft
from netsleuth.capture import open_capture
from netsleuth.capture.chunks import CHUNK_BYTES
from netsleuth.checks import collect, new_checks, observe_all
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.findings import Finding
from netsleuth.pipeline import InputResult, tables
from tests.splitutil import write

SMALL = 64 << 10


def findings(path: Path, chunk: int) -> tuple[int, list[Finding]]:
    """(batches read, every check's findings) with buffers of `chunk` bytes."""
    checks, batches = new_checks(), 0
    for table in tables(open_capture(str(path), chunk_bytes=chunk), InputResult(str(path))):
        observe_all(checks, table)
        batches += 1
    return batches, collect(checks)


def stretched(frames: list[tuple[int, bytes]], factor: int) -> list[tuple[int, bytes]]:
    """The same frames with the time between them multiplied: fragment trains left open
    then outlive the 30 s timeout between one batch and a later one."""
    t0 = frames[0][0]
    return [(t0 + (ts - t0) * factor, frame) for ts, frame in frames]


def late_outer_fragments(units: int = 60) -> list[tuple[int, bytes]]:
    """GRE-TEB datagrams in two outer fragments, the second 32.5 s after the first, 30
    packets between them 32 s after the first: a batch ends among those now and then (the
    datagram is stale there) and sometimes before them. Either way the second fragment
    starts a datagram of its own and nothing is rebuilt."""
    seg = craft.tcp("10.1.0.1", "10.1.0.2", 40000, 443, bytes(1360), flags="A")
    inner = craft.ether(craft.ipv4("10.1.0.1", "10.1.0.2", seg, 6, ident=99), 0x0800)
    filler = craft.ether(craft.ipv4("192.0.2.1", "192.0.2.2", bytes(1000), 17), 0x0800)
    out, t, s = [], 1_700_000_000 * 10**9, 10**9
    for k in range(units):
        first, last = craft.fragment_ipv4(
            "203.0.113.1", "203.0.113.2", craft.gre(inner, 0x6558), 47, sizes=[1000, 0], ident=k
        )
        out.append((t, craft.ether(first, 0x0800)))
        out += [(t + 32 * s, filler)] * 30
        out.append((t + 32 * s + s // 2, craft.ether(last, 0x0800)))
        t += 40 * s
    return out


CAPTURES: dict[str, Callable[[], list[tuple[int, bytes]]]] = {
    "outer fragments 32.5 s apart": late_outer_fragments,
    # Recurring fragment ids (16 of them): many datagram instances per key per batch.
    "mix": lambda: list(mixed_capture(20_000, seed=3, id_pool=16)),
    # The same, its clock slowed until trains expire between batches.
    "mix, slow clock": lambda: stretched(list(mixed_capture(20_000, seed=5, id_pool=16)), 5_000),
    "incident 1": lambda: incidents.incident1_poison_fragment(normal=2_000),
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_the_same_findings_whatever_the_buffer_size(name: str, tmp_path: Path) -> None:
    path = write(tmp_path / "c.pcap", CAPTURES[name]())
    small_batches, small = findings(path, SMALL)
    big_batches, big = findings(path, CHUNK_BYTES)
    assert small_batches >= 4 * big_batches  # the cut really moved
    assert any(f.id.startswith(("ipv4.fragment", "ipv6.fragment")) for f in big)
    assert small == big
