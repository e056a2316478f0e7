"""MPLS label stacks (RFC 3032): 4-byte entries until the bottom-of-stack bit."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import REGISTRY, register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Shim, Tunnel

MAX_LABELS = 16
CW_LEN = 4


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.mark_shim(idx, Shim.MPLS)
    walking = idx
    for _ in range(MAX_LABELS):
        walking = t.short(walking, 4, Anomaly.MPLS_TRUNCATED)
        if walking.shape[0] == 0:
            return
        p = t.pos[walking]
        entry = t.v.be32[p]
        top = t.mpls_n[walking] == 0
        t.mpls_label[walking[top]] = entry[top] >> 12
        t.mpls_n[walking] += 1
        t.pos[walking] = p + 4
        bottom = (entry & 0x100) != 0
        done = walking[bottom]
        # RFC 3032 carries no payload type: the first nibble tells IPv4 (4) and IPv6 (6);
        # anything else may be an Ethernet pseudowire (RFC 4448).
        ok = t.fits(done, 1)
        t.flag(done[~ok], Anomaly.MPLS_TRUNCATED)
        done = done[ok]
        nib = t.v.u8[t.pos[done]] >> 4
        ip = (nib == 4) | (nib == 6)
        t.hand_on(done[ip], t.pos[done[ip]], NS.FRAME, FrameKey.RAWIP)
        other = done[~ip]
        eth_at = _ethernet_pseudowire(t, other, t.pos[other])
        eth = eth_at >= 0
        t.hand_on(other[eth], eth_at[eth], NS.FRAME, FrameKey.ETHERNET)
        t.stop(other[~eth])
        walking = walking[~bottom]
    t.flag(walking, Anomaly.MPLS_TOO_DEEP)


def _ethernet_pseudowire(
    t: PacketTable, idx: NDArray[np.int64], p: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Where an Ethernet pseudowire's frame starts after the bottom label at `p`, or -1 where the
    payload looks like no Ethernet frame. Whether a PW carries the control word (RFC 4385
    section 3: a first nibble 0) is per-PW configuration, optional in RFC 4448 section 4.6,
    and a frame without it often starts with nibble 0 too (MAC 00:1b:21:...). Decided as
    tshark's pwethheuristic does: the control word only when the EtherType behind it is
    decodable and the one read without it is not; otherwise a frame without control word
    if its EtherType is decodable; otherwise (the RFC 5586 associated channel, a payload we
    cannot name) the descent ends, without an anomaly: nothing on the wire is wrong."""
    end = t.end[idx]
    nocw = p + 14 <= end
    nocw[nocw] = REGISTRY.bound(NS.ETHERTYPE, t.v.be16[p[nocw] + 12].astype(np.int64))
    cw = (p + CW_LEN + 14 <= end) & ((t.v.u8[np.where(p < end, p, 0)] >> 4) == 0) & ~nocw
    cw[cw] = REGISTRY.bound(NS.ETHERTYPE, t.v.be16[p[cw] + CW_LEN + 12].astype(np.int64))
    out: NDArray[np.int64] = np.where(cw, p + CW_LEN, np.where(nocw, p, -1))
    return out


def plausible_stack(t: PacketTable, idx: NDArray[np.int64]) -> NDArray[np.bool_]:
    """A label stack whose bottom-of-stack entry lies inside the payload, within
    MAX_LABELS, then what decode() would go on with (IP, an Ethernet pseudowire): behind a
    UDP port (a hint) anything else is not MPLS, not a bad stack."""
    after = np.full(idx.shape[0], -1, np.int64)
    open_ = np.ones(idx.shape[0], np.bool_)
    p, end = t.pos[idx], t.end[idx]
    for k in range(MAX_LABELS):
        at = p + 4 * k
        open_ &= at + 4 <= end
        bottom = open_ & ((t.v.u8[np.where(open_, at + 2, 0)] & 0x01) != 0)
        after[bottom] = at[bottom] + 4
        open_ &= ~bottom
    ok = (after >= 0) & (after < end)
    nib = t.v.u8[np.where(ok, after, 0)] >> 4
    ip = ok & ((nib == 4) | (nib == 6))
    eth = ok & ~ip
    eth[eth] = _ethernet_pseudowire(t, idx[eth], after[eth]) >= 0
    found: NDArray[np.bool_] = ip | eth
    return found


register(NS.ETHERTYPE, 0x8847, "mpls", decode)
register(NS.ETHERTYPE, 0x8848, "mpls-multicast", decode)
register(NS.PPP, 0x0281, "mpls", decode)
register(NS.TUNNEL_PROTO, 0x8847, "mpls", decode)  # MPLS in GRE (RFC 4023)
# RFC 7510
register(NS.UDPPORT, 6635, "mpls-in-udp", decode, tunnel=Tunnel.MPLS_UDP, accept=plausible_stack)
register(NS.TUNNEL_PROTO, 0x8848, "mpls-multicast", decode)
# RFC 4023 section 3; Linux receives it through tunnel4.c/tunnel6.c (tunnelmpls4/6 handlers)
register(NS.IPPROTO, 137, "mpls-in-ip", decode, tunnel=Tunnel.MPLS_IP)
