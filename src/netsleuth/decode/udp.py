"""UDP (RFC 768); hands on by destination port (VXLAN, Geneve)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

HLEN = 8


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short_l4(idx, HLEN, Anomaly.UDP_TRUNCATED)
    p = t.pos[idx]
    sport = t.v.be16[p]
    dport = t.v.be16[p + 2]
    ulen = t.v.be16[p + 4].astype(np.int64)
    inner, iidx, outer, oidx = t.l4_layers(idx)
    osel = t.nip[idx] == 1
    for layer, sub, sel in ((inner, iidx, slice(None)), (outer, oidx, osel)):
        layer.l4_off[sub] = (p[sel] - t.start[sub]).astype(np.int32)
        layer.sport[sub] = sport[sel]
        layer.dport[sub] = dport[sel]
        layer.l4_len[sub] = ulen[sel]
    # A fragment holds only part of the datagram the length counts; and the fragments'
    # payload is not ours to descend into before reassembly.
    frag = t.inner.is_frag[idx]
    t.stop(idx[frag])
    idx, p, ulen, dport = idx[~frag], p[~frag], ulen[~frag], dport[~frag]
    # Length 0 is legal over IPv6 jumbograms (RFC 2675 section 4); otherwise it must cover
    # the header and stay inside the IP payload (RFC 768).
    bad = ((ulen < HLEN) & (ulen != 0)) | (p + ulen > t.wend[idx])
    t.flag(idx[bad], Anomaly.UDP_BAD_LENGTH)
    idx, p, ulen, dport = idx[~bad], p[~bad], ulen[~bad], dport[~bad]
    sized = ulen != 0
    t.trim(idx[sized], (p + ulen)[sized])
    t.hand_on(idx, p + HLEN, NS.UDPPORT, dport.astype(np.int64))


register(NS.IPPROTO, 17, "udp", decode)
