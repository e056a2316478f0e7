"""Steering's per-batch column cache (steering.fields.FieldCache): the flow fields of a
table are computed once however many models read them, and equal the uncached ones."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from netsleuth.capture.batch import RecordBatch
from netsleuth.craft import incidents
from netsleuth.decode import PacketTable, decode
from netsleuth.steering import fields
from netsleuth.steering.model import NicModel, nic_hash
from netsleuth.steering.toeplitz import Toeplitz, parse_key


def test_models_share_one_computation_of_the_batch_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames = [f for _, f in incidents.incident3_pptp(flows=20, packets_per_flow=3)]
    t = decode(RecordBatch.from_packets(frames))
    nic = NicModel(queues=8, parse="outer", pptp=False, key=parse_key("microsoft"), l4=frozenset())
    toeplitz = Toeplitz(nic.key)
    want = nic_hash(t, nic, toeplitz)  # no cache: computed for this call alone
    calls: list[int] = []
    real = fields.select

    def counted(tb: PacketTable, mask: NDArray[np.bool_]) -> fields.Fields:
        calls.append(1)
        return real(tb, mask)

    monkeypatch.setattr(fields, "select", counted)
    cache = fields.FieldCache.of(t)
    got = [nic_hash(t, nic, toeplitz, cache) for _ in range(3)]
    assert len(calls) == 1  # the outer fields, once for three models
    for h, l4, _ in got:
        assert np.array_equal(h, want[0]) and np.array_equal(l4, want[1])
    assert cache.outer is not None and cache.innermost is None
    other = decode(RecordBatch.from_packets(frames[:5]))
    with pytest.raises(ValueError, match="the table it was made for"):
        fields.layer_fields(other, np.zeros(other.n, dtype=np.bool_), cache)
