"""Teredo (RFC 4380 section 5.1.1): IPv6 carried in UDP port 3544, optionally preceded by
an authentication indicator (0x0001, ID and authentication lengths, ID, value, 8-byte
nonce, confirmation byte) and an origin indication (0x0000, port, address: 8 bytes)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, PacketTable, Tunnel

AUTH, ORIGIN = 0x0001, 0x0000
ORIGIN_LEN = 8


def _ipv6_at(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.int64]:
    """Where the IPv6 packet starts behind the optional indicators, or -1 where the payload
    is not Teredo (cut short, or no IPv6 version nibble where the packet must start)."""
    u8, be16 = t.v.u8, t.v.be16
    p, end = t.pos[idx].astype(np.int64), t.end[idx]
    ok = p + 2 <= end
    auth = ok & (be16[np.where(ok, p, 0)] == AUTH)
    ok &= ~auth | (p + 4 <= end)
    q = np.where(auth & ok, p, 0)
    alen = 4 + u8[q + 2].astype(np.int64) + u8[q + 3].astype(np.int64) + 9
    p = np.where(auth & ok, p + alen, p)
    ok &= p + 2 <= end
    origin = ok & (be16[np.where(ok, p, 0)] == ORIGIN)
    p = np.where(origin, p + ORIGIN_LEN, p)
    ok &= p + 1 <= end
    # What remains is an IPv6 packet (a bubble too: IPv6 with no next header).
    ok &= (u8[np.where(ok, p, 0)] >> 4) == 6
    out: NDArray[np.int64] = np.where(ok, p, -1)
    return out


def plausible(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    found: NDArray[np.bool_] = _ipv6_at(t, idx) >= 0
    return found


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.hand_on(idx, _ipv6_at(t, idx), NS.ETHERTYPE, 0x86DD)  # plausible(): found


register(
    NS.UDPPORT, 3544, "teredo", decode, tunnel=Tunnel.TEREDO, accept=plausible
)  # IANA, RFC 4380
