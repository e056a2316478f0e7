"""The compiled prefix pass (`_prefix.c`): Ethernet, VLAN, IPv4/IPv6, TCP/UDP and the common
tunnels (GRE v0, PPTP, IPIP, IPv6 in IP, VXLAN) in one loop.

It writes the same columns and leaves the same cursor as the NumPy decoders would, header by
header, and stops at the first thing it does not handle; the engine carries on from there.
This module only lines the PacketTable's arrays up in the C file's order and checks their
types, so a column whose dtype changes fails here, loudly, rather than being misread.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode._prefix import prefix
from netsleuth.decode.table import PacketTable, loop_column

# Headers the pass decodes per packet at most: more than any real packet has (four IP
# layers with their tags and tunnel headers). The engine's bound on headers per packet
# (engine.MAX_ROUNDS) must be larger, so the rounds left after the pass can count them.
MAX_STEPS = 24

# (PacketTable attribute, dtype), then (IP layer field, dtype) for the outer layer and again
# for inner_raw: _prefix.c's column order. The last table column is the engine's `depth`.
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
    ("tunnels", np.uint8),
    ("tunnel", np.uint8),
    ("tunnel_inner", np.uint8),
    ("tun_off", np.int32),
    ("gre_flags", np.uint16),
    ("gre_proto", np.uint16),
    ("gre_key", np.int64),
    ("vni", np.int64),
    ("ppp_proto", np.uint16),
)
_LAYER: tuple[tuple[str, type[np.generic]], ...] = (
    ("ver", np.uint8),
    ("off", np.int32),
    ("hlen", np.uint16),
    ("tot_len", np.uint32),
    ("ident", np.uint32),
    ("flags", np.uint8),
    ("frag_off", np.uint32),
    ("is_frag", np.bool_),
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
    ("icmp_type", np.int16),
    ("icmp_code", np.int16),
)


def decode_prefix(
    t: PacketTable,
    flat: NDArray[np.int16],
    tunnel_depth: int,
    depth: NDArray[np.uint8] | None = None,
) -> int:
    """Run the pass over every packet of `t`; return how many it finished. `flat` is the
    registry's lookup table (unbound keys end a descent), `tunnel_depth` the engine's limit
    on tunnels, and `depth` (zeros, one per packet) receives the headers decoded."""
    if depth is None:
        depth = np.zeros(t.n, dtype=np.uint8)
    cols = [loop_column(getattr(t, n), d, f"PacketTable.{n}", writable=True) for n, d in _TABLE]
    cols.append(loop_column(depth, np.uint8, "depth", writable=True))
    for layer in (t.outer, t.inner_raw):
        cols += [
            loop_column(getattr(layer, n), d, f"IPLayer.{n}", writable=True) for n, d in _LAYER
        ]
    return int(prefix(t.v.buf, tuple(cols), flat, tunnel_depth, MAX_STEPS))
