"""ERF records kept whole (LINKTYPE_ERF, 197: the record with its ERF header; the ERF reader
keeps every type it does not decode so, capture/erf.py, and libpcap's DAG captures write
them so). The provenance records (type 27, ERF_TYPE_META: Wireshark wiretap/erf_record.h)
that DAG software 5.x and later writes at the start of every capture file are metadata
about the capture, not packets of a link: they are counted (L2.ERF_META), as tshark shows
them (a frame whose only protocol is "erf"), and not named capture.unsupported_linktype.
Any other type (ATM cells, AAL5, multichannel, InfiniBand...) is a link netsleuth does not
decode, as before (L2.UNKNOWN, checks/linktype.py).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.registry import register
from netsleuth.decode.table import L2, NS, PacketTable

LINKTYPE_ERF = 197
ERF_HEADER = 16  # its type byte at 8; bit 7 says an extension header follows
ERF_TYPE_META = 27


def decode(t: PacketTable, idx: NDArray[np.int64]) -> None:
    whole = t.fits(idx, ERF_HEADER)
    kind = np.where(whole, t.v.u8[t.pos[idx] + 8] & 0x7F, -1)
    meta = kind == ERF_TYPE_META
    t.l2[idx[meta]] = L2.ERF_META
    t.l2[idx[~meta]] = L2.UNKNOWN
    t.stop(idx)


register(NS.LINKTYPE, LINKTYPE_ERF, "erf", decode)
