"""PIM (IP protocol 103, RFC 7761 section 4.9): a 4-byte header (version 2, type). A
Register (type 1) carries a multicast data packet from the first-hop router to the
rendezvous point after 4 bytes of flags (B, N): a tunnel, entered through its own
binding. Other PIM messages (hello, join/prune, ...) end here.

A Null-Register (the N bit, RFC 7761 section 4.4.1), which a first-hop router sends now and
then while the rendezvous point has it stop registering, carries a dummy IP header alone:
tcpdump's pim-packet-assortment.pcap holds ones of protocol 103 and total length 20. So a
PIM packet inside a Register that its own IP header gives no byte is no truncated header,
and decoding ends there without an anomaly."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import rawip
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Tunnel

REGISTER = 1
REGISTER_HLEN = 8  # PIM header + B/N flags and reserved bits


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    # The IP decoder bounded `end` by the total length: none left is a dummy header.
    dummy = (t.end[idx] == t.pos[idx]) & (t.tunnel_inner[idx] == Tunnel.PIM)
    t.stop(idx[dummy])
    idx = t.short_l4(idx[~dummy], 4, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    vt = t.v.u8[p]
    reg = (vt == (2 << 4 | REGISTER)) & ~t.cur_is_frag(idx) & t.fits(idx, REGISTER_HLEN)
    t.stop(idx[~reg])
    r = idx[reg]
    t.hand_on(r, t.pos[r] + REGISTER_HLEN, NS.FRAME, FrameKey.PIM_REGISTER)


register(NS.IPPROTO, 103, "pim", decode)
register(NS.FRAME, FrameKey.PIM_REGISTER, "pim-register", rawip.decode, tunnel=Tunnel.PIM)
