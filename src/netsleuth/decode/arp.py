"""ARP (RFC 826): recognised so it is not reported as an unknown EtherType; not decoded
past its length. Its hardware and protocol address lengths (bytes 4 and 5) give its size,
8 bytes and two of each address: what follows is padding (and, in an ERF record, the
frame's FCS, which PacketTable.settle_fcs finds past that length, as tshark's ARP
dissector lets packet-eth.c find it)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, PacketTable

FIXED = 8  # hardware type, protocol type, their address lengths, operation


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    # Every ARP frame ends decoding here, one too short to give its lengths too (one not
    # stopped came back every round until decode.too_deep: helper-53).
    t.stop(idx)
    whole = idx[t.fits(idx, FIXED)]
    p = t.pos[whole]
    end = p + FIXED + 2 * (t.v.u8[p + 4].astype(np.int64) + t.v.u8[p + 5])
    inside = end <= t.wend[whole]
    t.trim(whole[inside], end[inside])


register(NS.ETHERTYPE, 0x0806, "arp", decode)
register(NS.ETHERTYPE, 0x8035, "rarp", decode)
