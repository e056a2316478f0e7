"""steer's spilled tables equal the all-in-memory ones exactly, and leave nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from netsleuth.capture import pcap
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.steering import run as steer_run
from netsleuth.steering import spill
from netsleuth.steering.model import NicModel, RpsModel
from netsleuth.steering.run import heaviest, steer_many
from netsleuth.steering.toeplitz import parse_key
from tests.spillutil import track_spills


def _capture(tmp_path: Path) -> str:
    frames = [*mixed_capture(3000, seed=11), *incidents.incident3_pptp(flows=400)]
    frames += incidents.incident3_gre_v0(flows=300)
    path = tmp_path / "mix.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, sorted(frames))
    return str(path)


def _models() -> list[tuple[NicModel, RpsModel | None]]:
    nic = NicModel(
        queues=8,
        parse="inner",
        pptp=False,
        key=parse_key("microsoft"),
        l4=frozenset({"tcp4", "udp4"}),
    )
    return [(nic, RpsModel((4, 9), tuple(range(8)), 7)), (nic, None)]


def _summary(results: list[steer_run.SteerResult]) -> list[tuple[object, ...]]:
    return [
        (r.distinct_flows, r.rss_keys, r.rps_keys, heaviest(r, 100), r.queues.packets.tolist())
        for r in results
    ]


def test_spilled_counts_equal_in_memory_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _capture(tmp_path)
    whole = _summary(steer_many([path], _models()))
    made = track_spills(monkeypatch)
    monkeypatch.setattr(spill, "RANGE_RECORDS", 64)  # many key ranges
    monkeypatch.setattr(pcap, "MAX_RECORDS", 128)  # many batches
    monkeypatch.setattr(spill, "KEY_LIMIT", 97)
    monkeypatch.setattr(spill, "FLOW_LIMIT", 101)
    spilled = _summary(steer_many([path], _models()))
    assert len(made) > 20  # it did spill, many times
    assert spilled == whole
    assert (
        isinstance(whole[0][0], int) and whole[0][0] > 1000
    )  # flows enough to make the comparison mean something
    assert not any(os.path.exists(os.path.dirname(m)) for m in made)


def test_distinct_keys_against_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 5000, size=40_000, dtype=np.uint64)
    with spill.SpillDir() as d:
        dk = spill.DistinctKeys(d, limit=300)
        for chunk in np.array_split(keys, 57):
            dk.add(chunk)
        assert dk.count() == np.unique(keys).shape[0]
        folder = d.path
        assert folder is not None and os.path.isdir(folder)
    assert not os.path.exists(folder)
