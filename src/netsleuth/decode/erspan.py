"""Cisco ERSPAN inside GRE (draft-foschiano-erspan-03): type I (no header), type II
(8 bytes, GRE sequence bit set) and type III (12 bytes + optional 8-byte subheader)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Tunnel

F_SEQ = 0x1000
FT_ETHERNET, FT_IP = 0, 2  # ERSPAN III frame types (draft section 4.3)


def _kind(t: PacketTable, idx: NDArray[np.int64]) -> None:
    """GRE's protocol type says ERSPAN: the tunnel is one even if its header is cut."""
    t.tunnel_inner[idx] = Tunnel.ERSPAN
    t.tunnel[idx[t.tunnels[idx] == 1]] = Tunnel.ERSPAN


def decode_ii(t: PacketTable, idx: NDArray[np.int64]) -> None:
    # Type I has no ERSPAN header; GRE then carries no sequence number (draft section 4.1).
    _kind(t, idx)
    type1 = (t.gre_flags[idx] & F_SEQ) == 0
    i1 = idx[type1]
    t.vni[i1] = -1  # type I has no session id
    t.hand_on(i1, t.pos[i1], NS.FRAME, FrameKey.ETHERNET)
    idx = t.short(idx[~type1], 8, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    t.vni[idx] = (t.v.be16[p + 2] & 0x03FF).astype(np.int64)
    t.hand_on(idx, p + 8, NS.FRAME, FrameKey.ETHERNET)


def decode_iii(t: PacketTable, idx: NDArray[np.int64]) -> None:
    _kind(t, idx)
    idx = t.short(idx, 12, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    word = t.v.be16[p + 10].astype(np.int64)
    ft = (word >> 10) & 0x1F
    hlen = 12 + 8 * (word & 1)  # O bit: platform specific subheader follows
    fits = t.fits(idx, hlen)
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, ft, hlen = idx[fits], p[fits], ft[fits], hlen[fits]
    t.vni[idx] = (t.v.be16[p + 2] & 0x03FF).astype(np.int64)
    eth = ft == FT_ETHERNET
    ip = ft == FT_IP
    t.hand_on(idx[eth], (p + hlen)[eth], NS.FRAME, FrameKey.ETHERNET)
    t.hand_on(idx[ip], (p + hlen)[ip], NS.FRAME, FrameKey.RAWIP)
    t.stop(idx[~eth & ~ip])


register(NS.TUNNEL_PROTO, 0x88BE, "erspan-i-ii", decode_ii)
register(NS.TUNNEL_PROTO, 0x22EB, "erspan-iii", decode_iii)
