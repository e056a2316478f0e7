"""PPPoE (RFC 2516): the session stage (EtherType 0x8864) carries PPP after a 6-byte header
(version/type 0x11, code 0, session id, length of the PPP payload); the discovery stage
(0x8863) is control traffic with nothing inside to decode."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ppp
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Shim

HLEN = 6
VER_TYPE = 0x11  # version 1, type 1 (RFC 2516 section 4)


def session(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.mark_shim(idx, Shim.PPPOE)
    idx = t.short(idx, HLEN, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    ok = (t.v.u8[p] == VER_TYPE) & (t.v.u8[p + 1] == 0)
    t.flag(idx[~ok], Anomaly.TUNNEL_BAD_VERSION)
    idx, p = idx[ok], p[ok]
    end = p + HLEN + t.v.be16[p + 4].astype(np.int64)
    over = end > t.wend[idx]
    t.flag(idx[over], Anomaly.L2_BAD_LENGTH)
    idx, p, end = idx[~over], p[~over], end[~over]
    t.trim(idx, end)  # what follows the PPP payload is Ethernet padding
    t.pos[idx] = p + HLEN
    ppp.decode_at_link(t, idx)


def discovery(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.stop(idx)


register(NS.ETHERTYPE, 0x8864, "pppoe-session", session)
register(NS.ETHERTYPE, 0x8863, "pppoe-discovery", discovery)
