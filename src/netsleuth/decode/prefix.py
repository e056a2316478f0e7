"""The compiled prefix pass (`_prefix.c`): Ethernet, VLAN, IPv4/IPv6, TCP/UDP in one loop.

It writes the same columns and leaves the same cursor as the NumPy decoders would, layer by
layer, and stops at the first thing it does not handle; the engine carries on from there.
This module only lines the PacketTable's arrays up in the C file's order and checks their
types, so a column whose dtype changes fails here, loudly, rather than being misread.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode._prefix import prefix
from netsleuth.decode.table import PacketTable

# (PacketTable attribute, dtype), then (outer-layer field, dtype): _prefix.c's column order.
_TABLE: tuple[tuple[str, type[np.generic]], ...] = (
    ("start", np.int64),
    ("end", np.int64),
    ("wend", np.int64),
    ("pos", np.int64),
    ("ns", np.uint8),
    ("key", np.int64),
    ("l2", np.uint8),
    ("ethertype", np.uint16),
    ("vlan_n", np.uint8),
    ("vlan1", np.uint16),
    ("vlan2", np.uint16),
    ("nip", np.uint8),
)
_OUTER: tuple[tuple[str, type[np.generic]], ...] = (
    ("ver", np.uint8),
    ("off", np.int32),
    ("hlen", np.uint16),
    ("tot_len", np.uint32),
    ("ident", np.uint32),
    ("flags", np.uint8),
    ("frag_data", np.int32),
    ("ttl", np.uint8),
    ("flow_label", np.uint32),
    ("proto", np.uint8),
    ("checksum", np.uint16),
    ("csum_ok", np.bool_),
    ("src4", np.uint32),
    ("dst4", np.uint32),
    ("src6", np.uint8),
    ("dst6", np.uint8),
    ("l4_off", np.int32),
    ("sport", np.uint16),
    ("dport", np.uint16),
    ("tcp_flags", np.uint16),
    ("l4_len", np.uint32),
)


def decode_prefix(t: PacketTable, flat: NDArray[np.int16]) -> int:
    """Run the prefix pass over every packet of `t` still at its link type; return how many
    it finished. `flat` is the registry's lookup table (unbound ports end a descent)."""
    cols: list[NDArray[np.generic]] = []
    for name, dtype in _TABLE:
        cols.append(_checked(getattr(t, name), dtype, name))
    for name, dtype in _OUTER:
        cols.append(_checked(getattr(t.outer, name), dtype, name))
    return int(prefix(t.v.buf, tuple(cols), flat))


def _checked(a: NDArray[np.generic], dtype: type[np.generic], name: str) -> NDArray[np.generic]:
    if a.dtype != dtype or not a.flags.c_contiguous or not a.flags.writeable:
        raise TypeError(f"PacketTable.{name}: {a.dtype} array, the prefix pass needs {dtype}")
    return a
