"""UDP (RFC 768); hands on by destination port (VXLAN, Geneve)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import headers
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

HLEN = 8


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short_l4(idx, HLEN, Anomaly.UDP_TRUNCATED)
    p = t.pos[idx]
    h = t.v.header(p, headers.UDP)
    sport, dport = h["sport"], h["dport"]
    ulen = h["length"].astype(np.int64)
    t.put(
        t.l4_targets(idx),
        {"l4_off": p - t.start[idx], "sport": sport, "dport": dport, "l4_len": ulen},
    )
    # A fragment holds only part of the datagram the length counts; and the fragments'
    # payload is not ours to descend into before reassembly.
    frag = t.cur_is_frag(idx)
    if frag.any():
        t.stop(idx[frag])
        idx, p, ulen, dport = idx[~frag], p[~frag], ulen[~frag], dport[~frag]
    # Length 0 is legal over IPv6 jumbograms (RFC 2675 section 4); otherwise it must cover
    # the header and stay inside the IP payload (RFC 768).
    bad = ((ulen < HLEN) & (ulen != 0)) | (p + ulen > t.wend[idx])
    if bad.any():
        t.flag(idx[bad], Anomaly.UDP_BAD_LENGTH)
        idx, p, ulen, dport = idx[~bad], p[~bad], ulen[~bad], dport[~bad]
    sized = ulen != 0
    t.trim(idx[sized], (p + ulen)[sized])
    t.hand_on(idx, p + HLEN, NS.UDPPORT, dport.astype(np.int64))


register(NS.IPPROTO, 17, "udp", decode)
