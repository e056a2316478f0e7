"""GTP-U (3GPP TS 29.281 section 5): an 8-byte header (version 1, PT 1, E/S/PN flags,
message type, length of what follows the first 8 bytes, TEID), 4 more bytes when any of
E/S/PN is set, then extension headers while E says so (each: length in 4-byte units, ...,
next extension type). A G-PDU (type 255) carries a user IP packet; the TEID goes to `vni`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Tunnel

G_PDU = 0xFF
F_E, F_OPT = 0x04, 0x07  # extension header flag; any of E, S, PN: the optional 4 bytes
MAX_EXT = 8  # real G-PDUs carry one or two (PDU session container); bound the walk


def plausible(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Version 1, PT 1 (not GTP'), and a length inside the UDP payload."""
    ok = t.fits(idx, 8)
    p = t.pos[idx[ok]]
    flags = t.v.u8[p]
    end = p + 8 + t.v.be16[p + 2].astype(np.int64)
    ok[ok] = ((flags >> 5) == 1) & ((flags & 0x10) != 0) & (end <= t.wend[idx[ok]])
    return ok


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    p = t.pos[idx]  # plausible(): version 1, PT 1, the length inside the payload
    flags = t.v.u8[p].astype(np.int64)
    t.vni[idx] = t.v.be32[p + 4].astype(np.int64)
    t.trim(idx, p + 8 + t.v.be16[p + 2].astype(np.int64))
    hlen = 8 + np.where((flags & F_OPT) != 0, 4, 0)
    fits = t.fits(idx, hlen)
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, flags, hlen = idx[fits], p[fits], flags[fits], hlen[fits]
    gpdu = t.v.u8[p + 1] == G_PDU
    t.stop(idx[~gpdu])  # echo, error indication, end marker: signalling, no user packet
    idx, p, flags, hlen = idx[gpdu], p[gpdu], flags[gpdu], hlen[gpdu]
    t.pos[idx] = p + hlen
    nxt = np.where((flags & F_E) != 0, t.v.u8[p + 11], 0).astype(np.int64)
    walking = idx[nxt != 0]
    for _ in range(MAX_EXT):
        if walking.shape[0] == 0:
            break
        walking = t.short(walking, 1, Anomaly.TUNNEL_TRUNCATED)
        q = t.pos[walking]
        length = 4 * t.v.u8[q].astype(np.int64)
        ok = (length > 0) & (q + length <= t.end[walking])
        t.flag(walking[~ok], Anomaly.TUNNEL_TRUNCATED)
        walking, q, length = walking[ok], q[ok], length[ok]
        t.pos[walking] = q + length
        walking = walking[t.v.u8[q + length - 1] != 0]
    t.flag(walking, Anomaly.TUNNEL_TRUNCATED)
    idx = idx[t.ns[idx] != NS.DONE]
    t.hand_on(idx, t.pos[idx], NS.FRAME, FrameKey.RAWIP)


register(
    NS.UDPPORT, 2152, "gtp-u", decode, tunnel=Tunnel.GTPU, accept=plausible
)  # 3GPP TS 29.281 4.4.2.3
