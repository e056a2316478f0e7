"""IPv4 (RFC 791), options skipped by IHL; also the inner header of IPIP (IP protocol 4)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

MIN_HLEN = 20


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, MIN_HLEN, Anomaly.IPV4_TRUNCATED)
    p = t.pos[idx]
    vihl = t.v.u8[p]
    badver = (vihl >> 4) != 4
    t.flag(idx[badver], Anomaly.IP_BAD_VERSION)
    idx, p, vihl = idx[~badver], p[~badver], vihl[~badver]
    hlen = (vihl & 0x0F).astype(np.int64) * 4
    badhl = hlen < MIN_HLEN
    t.flag(idx[badhl], Anomaly.IPV4_BAD_HEADER_LENGTH)
    idx, p, hlen = idx[~badhl], p[~badhl], hlen[~badhl]
    fit = t.fits(idx, hlen)
    t.flag(idx[~fit], Anomaly.IPV4_TRUNCATED)
    idx, p, hlen = idx[fit], p[fit], hlen[fit]

    tot = t.v.be16[p + 2].astype(np.int64)
    # Total length 0 is what Linux BIG TCP writes for IPv4 packets over 64 KiB (Linux 6.3,
    # "net: add support for BIG TCP IPv4"): such a packet is as long as the frame says.
    tso = tot == 0
    tot = np.where(tso, t.wend[idx] - p, tot)
    badtot = (tot < hlen) | (p + tot > t.wend[idx])
    ff = t.v.be16[p + 6]
    flags = ((ff >> 13) & 3).astype(np.uint8)  # DF 0x2, MF 0x1 (RFC 791 section 3.1)
    frag_off = (ff & 0x1FFF).astype(np.uint32) * 8
    proto = t.v.u8[p + 9]
    cols = {
        "ver": 4,
        "off": (p - t.start[idx]).astype(np.int32),
        "hlen": hlen,
        "tot_len": tot,
        "ident": t.v.be16[p + 4],
        "flags": flags,
        "frag_off": frag_off,
        "is_frag": ((flags & 1) != 0) | (frag_off != 0),
        "ttl": t.v.u8[p + 8],
        "proto": proto,
        "checksum": t.v.be16[p + 10],
        "src4": t.v.be32[p + 12],
        "dst4": t.v.be32[p + 16],
    }
    store_ip(t, idx, cols)
    t.flag(idx[badtot], Anomaly.IPV4_BAD_TOTAL_LENGTH)
    ok = ~badtot
    idx, p, hlen, tot = idx[ok], p[ok], hlen[ok], tot[ok]
    t.trim(idx, p + tot)
    # Only the first fragment carries the transport header (RFC 791 section 2.3).
    later = frag_off[ok] != 0
    t.stop(idx[later])
    first = ~later
    t.hand_on(idx[first], p[first] + hlen[first], NS.IPPROTO, proto[ok][first].astype(np.int64))


def store_ip(t: PacketTable, idx: NDArray[np.int64], cols: dict[str, object]) -> None:
    """Write an IP layer's fields: to `inner` always, to `outer` for a packet's first IP."""
    outer_sel = t.nip[idx] == 0
    oidx = idx[outer_sel]
    t.inner.clear_l4(idx)
    for name, val in cols.items():
        getattr(t.inner, name)[idx] = val
        if oidx.shape[0]:
            getattr(t.outer, name)[oidx] = val[outer_sel] if isinstance(val, np.ndarray) else val
    t.nip[idx] += 1


register(NS.ETHERTYPE, 0x0800, "ipv4", decode)
register(NS.PPP, 0x0021, "ipv4", decode)  # RFC 1332
register(NS.IPPROTO, 4, "ipip", decode, tunnel=Tunnel.IPIP)  # RFC 2003; 4in6 (RFC 2473)
