"""Teredo (RFC 4380 section 5.1.1): IPv6 carried in UDP port 3544, optionally preceded by
an authentication indicator (0x0001, ID and authentication lengths, ID, value, 8-byte
nonce, confirmation byte) and an origin indication (0x0000, port, address: 8 bytes)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

AUTH, ORIGIN = 0x0001, 0x0000
ORIGIN_LEN = 8


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 2, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    auth = t.v.be16[p] == AUTH
    a = idx[auth]
    ok = t.fits(a, 4)
    t.flag(a[~ok], Anomaly.TUNNEL_TRUNCATED)
    a = a[ok]
    at = t.pos[a]
    alen = 4 + t.v.u8[at + 2].astype(np.int64) + t.v.u8[at + 3].astype(np.int64) + 9
    t.pos[a] = at + alen
    idx = np.sort(np.concatenate((idx[~auth], a)))
    idx = t.short(idx, 2, Anomaly.TUNNEL_TRUNCATED)
    origin = idx[t.v.be16[t.pos[idx]] == ORIGIN]
    t.pos[origin] += ORIGIN_LEN
    # What remains is an IPv6 packet (a bubble too: IPv6 with no next header).
    idx = t.short(idx, 1, Anomaly.TUNNEL_TRUNCATED)
    v6 = (t.v.u8[t.pos[idx]] >> 4) == 6
    t.hand_on(idx[v6], t.pos[idx[v6]], NS.ETHERTYPE, 0x86DD)
    t.flag(idx[~v6], Anomaly.IP_BAD_VERSION)


register(NS.UDPPORT, 3544, "teredo", decode, tunnel=Tunnel.TEREDO)  # IANA, RFC 4380
