"""UDP (RFC 768); hands on by port (VXLAN, Geneve, the other UDP tunnels).

Which port names the payload: a DNS reply from 8.8.8.8:53 to a client's port 3544 is DNS,
not Teredo. As tshark (decode_udp_ports: the lower port first) and the IANA split of ports
(RFC 6335 section 6: 0-1023 system ports name a service): the lower port wins where it is
bound here or a system port; else the higher one. A system port we decode nothing on ends
the descent (unbound UDP ports raise no anomaly)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import headers
from netsleuth.decode.registry import REGISTRY, register
from netsleuth.decode.table import NS, Anomaly, PacketTable

HLEN = 8
SYSTEM_PORTS = 1024  # RFC 6335 section 6; _prefix.c udp() applies the same rule


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
        idx, p, ulen = idx[~frag], p[~frag], ulen[~frag]
        sport, dport = sport[~frag], dport[~frag]
    # Length 0 is legal over IPv6 jumbograms (RFC 2675 section 4); otherwise it must cover
    # the header and stay inside the IP payload (RFC 768).
    bad = ((ulen < HLEN) & (ulen != 0)) | (p + ulen > t.wend[idx])
    if bad.any():
        t.flag(idx[bad], Anomaly.UDP_BAD_LENGTH)
        idx, p, ulen = idx[~bad], p[~bad], ulen[~bad]
        sport, dport = sport[~bad], dport[~bad]
    sized = ulen != 0
    t.trim(idx[sized], (p + ulen)[sized])
    t.hand_on(idx, p + HLEN, NS.UDPPORT, payload_port(sport, dport))


def payload_port(sport: NDArray[np.uint16], dport: NDArray[np.uint16]) -> NDArray[np.int64]:
    """The port whose protocol the payload is taken for (the module's docstring)."""
    a, b = sport.astype(np.int64), dport.astype(np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    named = REGISTRY.bound(NS.UDPPORT, lo) | ((lo > 0) & (lo < SYSTEM_PORTS))
    out: NDArray[np.int64] = np.where(named, lo, hi)
    return out


register(NS.IPPROTO, 17, "udp", decode)
