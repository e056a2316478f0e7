"""TCP (RFC 9293): ports, flags and data offset; payload is not decoded."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

MIN_HLEN = 20


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short_l4(idx, MIN_HLEN, Anomaly.TCP_TRUNCATED)
    p = t.pos[idx]
    doff = (t.v.u8[p + 12] >> 4).astype(np.int64) * 4
    inner, iidx, outer, oidx = t.l4_layers(idx)
    osel = t.nip[idx] == 1
    for layer, sub, sel in ((inner, iidx, slice(None)), (outer, oidx, osel)):
        layer.l4_off[sub] = (p[sel] - t.start[sub]).astype(np.int32)
        layer.sport[sub] = t.v.be16[p[sel]]
        layer.dport[sub] = t.v.be16[p[sel] + 2]
        # Data offset's low nibble neighbours: reserved bits and AE (RFC 9293 section 3.1).
        layer.tcp_flags[sub] = t.v.be16[p[sel] + 12] & 0x0FFF
    bad = doff < MIN_HLEN
    t.flag(idx[bad], Anomaly.TCP_BAD_HEADER_LENGTH)
    idx, doff = idx[~bad], doff[~bad]
    t.short_l4(idx, doff, Anomaly.TCP_TRUNCATED)
    t.stop(idx)


register(NS.IPPROTO, 6, "tcp", decode)
