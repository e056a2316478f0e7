"""TCP (RFC 9293): ports, flags and data offset; payload is not decoded."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import headers
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

MIN_HLEN = 20


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short_l4(idx, MIN_HLEN, Anomaly.TCP_TRUNCATED)
    p = t.pos[idx]
    h = t.v.header(p, headers.TCP)
    of = h["offset_flags"]
    doff = (of >> 12).astype(np.int64) * 4
    t.put(
        t.l4_targets(idx),
        {
            "l4_off": p - t.start[idx],
            "sport": h["sport"],
            "dport": h["dport"],
            # The low 12 bits: flags, plus the reserved bits and AE (RFC 9293 section 3.1).
            "tcp_flags": of & 0x0FFF,
        },
    )
    bad = doff < MIN_HLEN
    if bad.any():
        t.flag(idx[bad], Anomaly.TCP_BAD_HEADER_LENGTH)
        idx, doff = idx[~bad], doff[~bad]
    t.short_l4(idx, doff, Anomaly.TCP_TRUNCATED)
    t.stop(idx)


register(NS.IPPROTO, 6, "tcp", decode)
