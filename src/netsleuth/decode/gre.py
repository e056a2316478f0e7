"""GRE version 0 (RFC 2784 with RFC 2890 key and sequence) and version 1, the enhanced GRE
of PPTP (RFC 2637 section 4.1). Hands on by protocol type in the TUNNEL_PROTO namespace."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

F_CSUM, F_ROUTING, F_KEY, F_SEQ = 0x8000, 0x4000, 0x2000, 0x1000
F_ACK = 0x0080  # version 1 only: acknowledgment number present
VERSION = 0x0007


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 4, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    fv = t.v.be16[p].astype(np.int64)
    proto = t.v.be16[p + 2].astype(np.int64)
    ver = fv & VERSION
    t.gre_flags[idx] = fv
    t.gre_proto[idx] = proto
    badver = ver > 1
    t.flag(idx[badver], Anomaly.GRE_BAD_VERSION)
    # RFC 1701 source routing (R bit) was dropped by RFC 2784 section 2.1; a receiver
    # following 2784 discards such packets, and we do not parse the SRE list.
    routing = ~badver & ((fv & F_ROUTING) != 0)
    t.flag(idx[routing], Anomaly.GRE_ROUTING)
    ok = ~badver & ~routing
    idx, p, fv, proto, ver = idx[ok], p[ok], fv[ok], proto[ok], ver[ok]
    has = [(fv & f) != 0 for f in (F_CSUM, F_KEY, F_SEQ, F_ACK)]
    csum, key, seq, ack = (h.astype(np.int64) for h in has)
    v1 = ver == 1
    # v0: checksum+reserved (4), key (4), sequence (4). v1: the key field is always there
    # (payload length, call id); sequence and acknowledgment are optional.
    hlen = 4 + 4 * (csum + key + seq) + np.where(v1, 4 * ack, 0)
    fits = t.fits(idx, hlen)
    t.flag(idx[~fits], Anomaly.TUNNEL_TRUNCATED)
    idx, p, hlen, proto, v1, key, csum = (a[fits] for a in (idx, p, hlen, proto, v1, key, csum))
    keyed = key == 1
    kat = p + 4 + 4 * csum
    k = idx[keyed & ~v1]
    t.gre_key[k] = t.v.be32[kat[keyed & ~v1]]
    k1 = idx[keyed & v1]
    t.gre_key[k1] = t.v.be16[kat[keyed & v1] + 2]  # PPTP call id
    pptp = idx[v1]
    t.tunnel_inner[pptp] = Tunnel.PPTP
    t.tunnel[pptp[t.tunnels[pptp] == 1]] = Tunnel.PPTP
    t.hand_on(idx, p + hlen, NS.TUNNEL_PROTO, proto)
    _payload_length(t, idx[keyed & v1], (p + hlen)[keyed & v1], kat[keyed & v1])


def _payload_length(
    t: PacketTable, idx: NDArray[np.int64], payload: NDArray[np.int64], kat: NDArray[np.int64]
) -> None:
    """Version 1 says how long its payload is (RFC 2637 section 4.1, the key field's high
    half). 0 is an acknowledgment alone (A bit, no S bit): a valid packet with nothing to
    decode. A length inside the frame bounds the payload (what follows is padding)."""
    plen = t.v.be16[kat].astype(np.int64)
    ack_only = plen == 0
    t.stop(idx[ack_only])
    inside = ~ack_only & (payload + plen <= t.wend[idx])
    t.trim(idx[inside], (payload + plen)[inside])


def plausible_in_udp(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    """GRE-in-UDP carries RFC 2784/2890 GRE (RFC 8086 section 3): version 0, no routing.
    Behind IP protocol 47 a bad header is flagged (decode); behind a UDP port, a hint, it
    is just not GRE."""
    ok = t.fits(idx, 4)
    fv = t.v.be16[t.pos[idx[ok]]]
    ok[ok] = ((fv & VERSION) == 0) & ((fv & F_ROUTING) == 0)
    return ok


register(NS.IPPROTO, 47, "gre", decode, tunnel=Tunnel.GRE)
# GRE-in-UDP (RFC 8086 section 3, IANA port 4754): the same GRE header after UDP.
register(NS.UDPPORT, 4754, "gre-in-udp", decode, tunnel=Tunnel.GRE_UDP, accept=plausible_in_udp)
