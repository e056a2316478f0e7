"""Cisco MetaData (EtherType 0x8909, TrustSec's inline Security Group Tag). On Ethernet:
version, length, an option (length and type) holding the 16-bit SGT, then the frame's own
EtherType (6 bytes and a type). Inside GRE (protocol type 0x8909) the EtherType comes first,
then version, length, option and SGT: 8 bytes. (Layouts as Wireshark's packet-cmd.c
dissects them; the GRE one is what tcpdump's various_gre.pcap carries, tshark agreeing.)"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

TAG_LEN = 6
GRE_LEN = 8


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    ethernet.tag_then_type(t, idx, TAG_LEN)


def decode_in_gre(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, GRE_LEN, Anomaly.TUNNEL_TRUNCATED)
    p = t.pos[idx]
    t.hand_on(idx, p + GRE_LEN, NS.TUNNEL_PROTO, t.v.be16[p].astype(np.int64))


register(NS.ETHERTYPE, 0x8909, "cisco-metadata", decode)
register(NS.TUNNEL_PROTO, 0x8909, "cisco-metadata", decode_in_gre)
