"""ICMP (RFC 792) and ICMPv6 (RFC 4443): type and code; the quoted packet is not decoded."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short_l4(idx, 4, Anomaly.ICMP_TRUNCATED)
    p = t.pos[idx]
    inner, iidx, outer, oidx = t.l4_layers(idx)
    osel = t.nip[idx] == 1
    for layer, sub, sel in ((inner, iidx, slice(None)), (outer, oidx, osel)):
        layer.l4_off[sub] = (p[sel] - t.start[sub]).astype(np.int32)
        layer.icmp_type[sub] = t.v.u8[p[sel]]
        layer.icmp_code[sub] = t.v.u8[p[sel] + 1]
    t.stop(idx)


register(NS.IPPROTO, 1, "icmp", decode)
register(NS.IPPROTO, 58, "icmpv6", decode)
