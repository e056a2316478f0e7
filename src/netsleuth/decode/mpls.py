"""MPLS label stacks (RFC 3032): 4-byte entries until the bottom-of-stack bit."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
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
        # anything else (a pseudowire control word, RFC 4385) ends decoding here.
        ok = t.fits(done, 1)
        t.flag(done[~ok], Anomaly.MPLS_TRUNCATED)
        done = done[ok]
        nib = t.v.u8[t.pos[done]] >> 4
        ip = (nib == 4) | (nib == 6)
        t.hand_on(done[ip], t.pos[done[ip]], NS.FRAME, FrameKey.RAWIP)
        # First nibble 0: the PW MPLS control word (RFC 4385 section 3), then an Ethernet
        # pseudowire's frame (RFC 4448 section 4.4.1). Nibble 1 (the associated channel,
        # RFC 5586) and the rest end here.
        cw = done[(nib == 0) & t.fits(done, CW_LEN + 14)]
        t.hand_on(cw, t.pos[cw] + CW_LEN, NS.FRAME, FrameKey.ETHERNET)
        t.stop(done[~ip & ~np.isin(done, cw)])
        walking = walking[~bottom]
    t.flag(walking, Anomaly.MPLS_TOO_DEEP)


register(NS.ETHERTYPE, 0x8847, "mpls", decode)
register(NS.ETHERTYPE, 0x8848, "mpls-multicast", decode)
register(NS.PPP, 0x0281, "mpls", decode)
register(NS.TUNNEL_PROTO, 0x8847, "mpls", decode)  # MPLS in GRE (RFC 4023)
register(NS.UDPPORT, 6635, "mpls-in-udp", decode, tunnel=Tunnel.MPLS_UDP)  # RFC 7510
register(NS.TUNNEL_PROTO, 0x8848, "mpls-multicast", decode)
