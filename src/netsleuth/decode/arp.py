"""ARP (RFC 826): recognised so it is not reported as an unknown EtherType; not decoded."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import NS, PacketTable


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    t.stop(idx)


register(NS.ETHERTYPE, 0x0806, "arp", decode)
register(NS.ETHERTYPE, 0x8035, "rarp", decode)
