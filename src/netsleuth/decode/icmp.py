"""ICMP (RFC 792) and ICMPv6 (RFC 4443): type and code; the quoted packet is not decoded."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short_l4(idx, 4, Anomaly.ICMP_TRUNCATED)
    p = t.pos[idx]
    t.put(
        t.l4_targets(idx),
        {"l4_off": p - t.start[idx], "icmp_type": t.v.u8[p], "icmp_code": t.v.u8[p + 1]},
    )
    t.stop(idx)


register(NS.IPPROTO, 1, "icmp", decode)
register(NS.IPPROTO, 58, "icmpv6", decode)
