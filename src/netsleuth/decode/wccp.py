"""WCCP v2 redirect inside GRE (draft-mclaggan-wccp-v2rev1 section 4.12): a 4-byte redirect
header, then the original IP packet."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 4, Anomaly.TUNNEL_TRUNCATED)
    t.hand_on(idx, t.pos[idx] + 4, NS.FRAME, FrameKey.RAWIP)


register(NS.TUNNEL_PROTO, 0x883E, "wccp", decode)
