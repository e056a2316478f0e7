"""Verdicts do not depend on where the reader's batches end.

The reader hands the checks 4 MiB buffers of records; nothing a user sees should change
with that size. The stateful checks make it so by deciding per fragment, not per batch:
a fragment more than 30 s after its datagram's first starts a new datagram in the
fragment audit and in the outer reassembly alike, so a batch end (where both also expire
what is stale) changes when state is let go, never a verdict. Here the same captures are
read with 64 KiB buffers (256 KiB: the reader rounds them up to hold the largest record;
still dozens of batches) and with the default (one or two), and every finding must be the
same: ids, counts, frame lists and evidence, and the flagged keys evidence export follows
(past their bound, those flagged at the earliest frames)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from netsleuth import craft
from netsleuth.capture import open_capture
from netsleuth.capture.chunks import CHUNK_BYTES
from netsleuth.checks import collect, fragments, new_checks, observe_all
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.findings import Finding
from netsleuth.pipeline import InputResult, tables
from tests.splitutil import write

SMALL = 64 << 10


def findings(path: Path, chunk: int) -> tuple[int, list[Finding], dict[str, set[bytes]]]:
    """(batches read, every check's findings, the fragment audit's flagged keys) with
    buffers of `chunk` bytes."""
    checks, batches = new_checks(), 0
    for table in tables(open_capture(str(path), chunk_bytes=chunk), InputResult(str(path))):
        observe_all(checks, table)
        batches += 1
    found = collect(checks)
    (audit,) = (c for c in checks if isinstance(c, FragmentAudit))
    return batches, found, audit.flagged_keys


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


def expiry_order() -> list[tuple[int, bytes]]:
    """Datagrams that end incomplete in an order a batch end decides: three left open at
    0 s (A), three more at 1 s (B) whose last fragments come at 31.5 s, 800 packets at
    30.5 s between. In one batch the B datagrams end first, each when its late fragment
    arrives (expired before it), and the A ones at the batch's end; when a batch ends
    among the 800, A expires there, before B. Either way A's frames are the earliest."""
    s = 10**9
    t0 = 1_700_000_000 * s
    payload = bytes(2000)
    out = []
    for k in range(3):
        first, _ = craft.fragment_ipv4(
            "198.51.100.1", "198.51.100.2", payload, 17, sizes=[1480, 0], ident=k
        )
        out.append((t0 + k, craft.ether(first, 0x0800)))
    late = []
    for k in range(3):
        first, last = craft.fragment_ipv4(
            "198.51.100.1", "198.51.100.2", payload, 17, sizes=[1480, 0], ident=100 + k
        )
        out.append((t0 + s + k, craft.ether(first, 0x0800)))
        late.append((t0 + 31 * s + s // 2 + k, craft.ether(last, 0x0800)))
    filler = craft.ether(craft.ipv4("192.0.2.1", "192.0.2.2", bytes(1400), 17), 0x0800)
    out += [(t0 + 30 * s + s // 2, filler)] * 800
    return out + late


CAPTURES: dict[str, Callable[[], list[tuple[int, bytes]]]] = {
    "incomplete datagrams ending in either order": expiry_order,
    "outer fragments 32.5 s apart": late_outer_fragments,
    # Recurring fragment ids (16 of them): many datagram instances per key per batch.
    "mix": lambda: list(mixed_capture(20_000, seed=3, id_pool=16)),
    # The same, its clock slowed until trains expire between batches.
    "mix, slow clock": lambda: stretched(list(mixed_capture(20_000, seed=5, id_pool=16)), 5_000),
    "incident 1": lambda: incidents.incident1_poison_fragment(normal=2_000),
}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_the_same_findings_whatever_the_buffer_size(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Few flagged keys kept per finding id, so which ones are kept is put to the test:
    # kept first-come, they followed the order datagrams ended in, which batch ends move.
    monkeypatch.setattr(fragments, "MAX_FLAGGED_KEYS", 3)
    path = write(tmp_path / "c.pcap", CAPTURES[name]())
    small_batches, small, small_keys = findings(path, SMALL)
    big_batches, big, big_keys = findings(path, CHUNK_BYTES)
    assert small_batches >= 4 * big_batches  # the cut really moved
    assert any(f.id.startswith(("ipv4.fragment", "ipv6.fragment")) for f in big)
    assert small == big
    assert small_keys == big_keys
    assert all(len(keys) <= 3 for keys in big_keys.values())


@pytest.mark.parametrize("chunk", [SMALL, CHUNK_BYTES])
def test_the_keys_flagged_earliest_are_kept(
    chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the bound, the keys kept are those flagged at the earliest frames: the three
    datagrams left open first (IP ids 0-2), not the three that ended first (100-102)."""
    monkeypatch.setattr(fragments, "MAX_FLAGGED_KEYS", 3)
    path = write(tmp_path / "c.pcap", expiry_order())
    kept = findings(path, chunk)[2]["ipv4.fragment.incomplete"]
    idents = sorted(int(np.frombuffer(k, fragments.KEY)["ident"][0]) for k in kept)
    assert idents == [0, 1, 2]
