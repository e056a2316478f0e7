"""Arista's vendor-specific header (EtherType 0xD28B), as switches insert a TAI timestamp
before the frame's own EtherType: subtype (2 bytes; 1 is timestamp), version (2 bytes;
0x0010: 64-bit timestamp, seconds and nanoseconds; 0x0020: 48-bit, 16-bit seconds and
nanoseconds), the timestamp, then the type (tcpdump print-arista.c and Wireshark
packet-arista.c read it so; tcpdump's arista_ether.pcap). Other subtypes and versions end
decoding: their length is not known. The version is the word's low byte: the file's
frames carry 0x0110 and 0x0120 too, with the same layouts (tshark agreeing)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import ethernet
from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, Anomaly, PacketTable

SUBTYPE_TIMESTAMP = 1
TIMESTAMP_LEN = {0x10: 8, 0x20: 6}


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    idx = t.short(idx, 4, Anomaly.L2_TRUNCATED)
    p = t.pos[idx]
    ts = t.v.be16[p] == SUBTYPE_TIMESTAMP
    ver = t.v.be16[p + 2] & 0x00FF  # the high byte is hardware information (0x0110, 0x0120)
    known = np.zeros(idx.shape[0], dtype=np.bool_)
    for v, size in TIMESTAMP_LEN.items():
        sel = ts & (ver == v)
        ethernet.tag_then_type(t, idx[sel], 4 + size)
        known |= sel
    t.stop(idx[~known])


register(NS.ETHERTYPE, 0xD28B, "arista-timestamp", decode)
