"""ipv4.bad_checksum: the header checksum of every IPv4 header, outer and inner.

A correct header sums (one's complement, 16-bit words, RFC 1071) to 0xFFFF. Vectorized: the
header rows are gathered once per header length (20 bytes nearly always; options are rare).
"""

from __future__ import annotations

import numpy as np

from netsleuth.checks.catalogue import CATALOGUE
from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import ip_layers
from netsleuth.decode.table import PacketTable
from netsleuth.model import Finding

ID = "ipv4.bad_checksum"


def header_sums(t: PacketTable, start: np.ndarray, hlen: np.ndarray) -> np.ndarray:
    """Folded one's complement sum of each header: 0xFFFF when the checksum is right.

    Summed as native 32-bit words into 64 bits, then folded to 16 (RFC 1071 section 2:
    the sum is byte-order independent, (B), and may be computed in wider words, (C);
    0xFFFF reads the same in either byte order). Column by column, which NumPy does
    ~4x faster than a reduction along a 5-word axis. IHL*4 is always a multiple of 4.
    """
    total = np.zeros(start.shape[0], dtype=np.uint64)
    for size in np.unique(hlen):
        sel = hlen == size
        rows = t.v.header(start[sel], np.dtype((np.void, int(size))))
        words = rows.view(np.uint8).reshape(-1, int(size)).view("<u4")
        acc = words[:, 0].astype(np.uint64)
        for k in range(1, int(size) // 4):
            acc += words[:, k]
        total[sel] = acc
    total = (total & 0xFFFFFFFF) + (total >> 32)
    for _ in range(3):
        total = (total & 0xFFFF) + (total >> 16)
    return total


class IPv4Checksum:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, t: PacketTable) -> None:
        for layer_name, layer, present in ip_layers(t):
            rows = np.flatnonzero(present & (layer.ver == 4))
            if rows.shape[0] == 0:
                continue
            start = t.start[rows] + layer.off[rows]
            ok = header_sums(t, start, layer.hlen[rows].astype(np.int64)) == 0xFFFF
            self.tally.add(layer_name, t.frame[rows[~ok]])

    def findings(self) -> list[Finding]:
        info = CATALOGUE[ID]
        return [
            Finding(
                ID,
                info.severity,
                n,
                info.summary,
                info.explanation,
                tuple(self.tally.frames[layer]),
                layer,
            )
            for layer, n in self.tally.count.items()
        ]
