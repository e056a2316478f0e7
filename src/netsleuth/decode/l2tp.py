"""L2TP over UDP port 1701. Version 2 (RFC 2661 section 3.1): flags T, L, S, O, P and
version, optional length, tunnel and session ids, optional Ns/Nr, optional offset, then a
PPP frame; control messages (T bit) carry nothing to decode. Version 3 (RFC 3931 section
4.1.2.1): T bit and version, reserved, session id (0: control), then a cookie and an
L2-specific sublayer whose sizes are per-session configuration, not on the wire: a data
session is named but its payload not decoded. L2TPv3 also runs directly over IP, protocol
115 (RFC 3931 section 4.1.1): a 4-byte session id (0: a control message follows), then the
same per-session cookie: named, not entered (Linux: net/l2tp/l2tp_ip.c, l2tp_ip6.c)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ppp
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

F_T, F_L, F_S, F_O = 0x8000, 0x4000, 0x0800, 0x0200


def plausible(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Version 2 or 3 in the low nibble of the first 2 bytes."""
    ok = t.fits(idx, 2)
    ver = t.v.be16[t.pos[idx[ok]]] & 0x0F
    ok[ok] = (ver == 2) | (ver == 3)
    return ok


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    p = t.pos[idx]  # plausible(): version 2 or 3
    fv = t.v.be16[p].astype(np.int64)
    ver = fv & 0x0F
    t.stop(idx[(ver == 3) | ((fv & F_T) != 0)])  # v3, or a control message
    v2 = (ver == 2) & ((fv & F_T) == 0)
    idx, p, fv = idx[v2], p[v2], fv[v2]
    hlen = 2 + np.where((fv & F_L) != 0, 2, 0) + 4 + np.where((fv & F_S) != 0, 4, 0)
    off = (fv & F_O) != 0
    fits = t.fits(idx, hlen + np.where(off, 2, 0))
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, hlen, off = idx[fits], p[fits], hlen[fits], off[fits]
    hlen = hlen + np.where(off, 2 + t.v.be16[p + hlen].astype(np.int64), 0)
    fits = t.fits(idx, hlen)
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, hlen = idx[fits], p[fits], hlen[fits]
    t.pos[idx] = p + hlen
    ppp.decode(t, idx)


def over_ip(t: PacketTable, idx: NDArray[np.int64]) -> None:
    """L2TPv3 over IP: the session id, then nothing decodable without the session's
    configuration."""
    t.stop(t.short(idx, 4, Anomaly.TUNNEL_TRUNCATED))


register(
    NS.UDPPORT, 1701, "l2tp", decode, tunnel=Tunnel.L2TP, accept=plausible
)  # IANA, RFC 2661 / 3931
register(NS.IPPROTO, 115, "l2tp-ip", over_ip, tunnel=Tunnel.L2TP)  # RFC 3931 section 4.1.1
