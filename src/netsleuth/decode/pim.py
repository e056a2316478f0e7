"""PIM (IP protocol 103, RFC 7761 section 4.9): a 4-byte header (version 2, type). A
Register (type 1) carries a multicast data packet from the first-hop router to the
rendezvous point after 4 bytes of flags (B, N): a tunnel, entered through its own
binding. Other PIM messages (hello, join/prune, ...) end here.

A Null-Register (the N bit, RFC 7761 sections 4.4.1 and 4.9.3), which a first-hop router
sends now and then while the rendezvous point has it stop registering, carries "only a
dummy header with S as the source address, G as the destination address, and a data length
of zero": an IP header whose protocol field names a transport that is not there by design
(tcpdump's pim-packet-assortment.pcap holds ones of protocol 103 and total length 20; the
RFC fixes no protocol). So in a Null-Register the dummy header is decoded, as tshark shows
it, and decoding ends after it without an anomaly when it gives no byte to what follows.
A dummy header of version 0 (tcpdump's "IP-Null-header", Wireshark's "Dummy Header") is
one too, read no further.
In a Register without the N bit an empty inner packet is what it would be anywhere: its
transport header is missing."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ipv4, ipv6, rawip
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, FrameKey, PacketTable, Tunnel

REGISTER = 1
REGISTER_HLEN = 8  # PIM header + B/N flags and reserved bits
NULL_REGISTER = 0x40  # the N bit, in the first byte of the flags word (RFC 7761 4.9.3)
DUMMY_VERSION = 0  # the version nibble of a Null-Register's dummy header that is no IP one


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short_l4(idx, 4, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    vt = t.v.u8[p]
    reg = (vt == (2 << 4 | REGISTER)) & ~t.cur_is_frag(idx) & t.fits(idx, REGISTER_HLEN)
    t.stop(idx[~reg])
    r = idx[reg]
    null = (t.v.u8[t.pos[r] + 4] & NULL_REGISTER) != 0
    key = np.where(null, FrameKey.PIM_NULL_REGISTER, FrameKey.PIM_REGISTER)
    t.hand_on(r, t.pos[r] + REGISTER_HLEN, NS.FRAME, key)


def dummy_header(t: PacketTable, idx: NDArray[np.int64]) -> None:
    """A Null-Register's dummy header, decoded here rather than handed on (as rawip does
    for a Register's data packet) so that what it hands on is seen before the next round:
    the transport its protocol field (or IPv6 next header) names has no byte, by design."""
    idx = t.short(idx, 1, Anomaly.IPV4_TRUNCATED)
    ver = t.v.u8[t.pos[idx]] >> 4
    ipv4.decode(t, idx[ver == 4])
    ipv6.decode(t, idx[ver == 6])
    # A dummy header of version 0 is one too: tcpdump ("IP-Null-header S > G",
    # print-pim.c) and Wireshark ("Dummy Header (0)", packet-pim.c) read it so. It is no IP
    # header, so no inner layer; the descent ends here.
    t.stop(idx[ver == DUMMY_VERSION])
    t.flag(idx[(ver != 4) & (ver != 6) & (ver != DUMMY_VERSION)], Anomaly.IP_BAD_VERSION)
    empty = (t.ns[idx] == NS.IPPROTO) & (t.pos[idx] == t.end[idx])
    t.stop(idx[empty])


register(NS.IPPROTO, 103, "pim", decode)
register(NS.FRAME, FrameKey.PIM_REGISTER, "pim-register", rawip.decode, tunnel=Tunnel.PIM)
register(NS.FRAME, FrameKey.PIM_NULL_REGISTER, "pim-null-register", dummy_header, tunnel=Tunnel.PIM)
