"""The compiled prefix pass (`_prefix.c`): Ethernet, VLAN, IPv4/IPv6, TCP/UDP, the common
tunnels (GRE v0, PPTP, IPIP, IPv6 in IP, VXLAN), radiotap, 802.11 data frames and
LLC/SNAP, and Linux cooked headers (SLL, SLL2) in one loop.

It writes the same columns and leaves the same cursor as the NumPy decoders would, header by
header, and stops at the first thing it does not handle; the engine carries on from there.
This module lines the PacketTable's arrays up in the C file's order and checks their types,
so a column whose dtype changes fails here, loudly, rather than being misread; and it hands
the pass its dispatch, generated from the registry whenever that changes (compiled_steps), so
the registry stays the one table of which key goes to which decoder.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode import _prefix
from netsleuth.decode.registry import Accept, Binding, Decoder, Registry
from netsleuth.decode.table import PacketTable, Tunnel, loop_column

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
    ("llc_dsap", np.int16),
    ("llc_ssap", np.int16),
    ("llc_ctrl", np.int16),
    ("snap_type", np.int32),
    ("ifindex", np.uint32),
    ("pkttype", np.uint8),
    ("way", np.uint8),
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


def _twins() -> dict[tuple[Decoder, Tunnel, Accept | None], int]:
    """Each NumPy decoder (with the tunnel it enters and the plausibility check it applies)
    that _prefix.c has a compiled twin for, and that twin's code. Which keys reach a decoder
    is the registry's alone: this says how a binding is decoded, never which keys bind."""
    from netsleuth.decode import (
        ethernet,
        gre,
        ieee80211,
        ipv4,
        ipv6,
        llc,
        ppp,
        radiotap,
        sll,
        tcp,
        udp,
        vlan,
        vxlan,
    )

    none = Tunnel.NONE
    return {
        (ethernet.from_linktype, none, None): _prefix.STEP_LINK_ETHERNET,
        (ethernet.decode, none, None): _prefix.STEP_ETHERNET,
        (vlan.decode, none, None): _prefix.STEP_VLAN,
        (ipv4.decode, none, None): _prefix.STEP_IPV4,
        (ipv4.decode, Tunnel.IPIP, None): _prefix.STEP_IPIP,
        (ipv6.decode, none, None): _prefix.STEP_IPV6,
        (ipv6.decode, Tunnel.IP6, None): _prefix.STEP_IP6,
        (tcp.decode, none, None): _prefix.STEP_TCP,
        (udp.decode, none, None): _prefix.STEP_UDP,
        (gre.decode, Tunnel.GRE, None): _prefix.STEP_GRE,
        (ppp.decode, none, None): _prefix.STEP_PPP,
        (vxlan.decode, Tunnel.VXLAN, vxlan.plausible): _prefix.STEP_VXLAN,
        (radiotap.from_linktype, none, None): _prefix.STEP_LINK_RADIOTAP,
        (ieee80211.from_linktype, none, None): _prefix.STEP_LINK_IEEE80211,
        (llc.decode, none, None): _prefix.STEP_LLC,
        (sll.decode_sll, none, None): _prefix.STEP_LINK_SLL,
        (sll.decode_sll2, none, None): _prefix.STEP_LINK_SLL2,
    }


def compiled_steps(registry: Registry) -> bytes:
    """The pass's dispatch, generated from `registry`: for each binding number of its flat
    table (1-based; 0 is unbound), the compiled twin that decodes it, 0 for none (the
    NumPy decoders take those packets over). Generated again whenever the registry's
    bindings change (a binding registered, or the list replaced; Registry never changes
    one in place, and one so changed would not be seen), else reused: generating it three
    times a batch was a tenth of a millisecond a batch."""
    bindings, flat = registry.bindings, registry.flat_table()
    seen = _STEPS.get(id(registry))
    if seen is not None and seen[0] is bindings and seen[1] == len(bindings) and seen[2] is flat:
        return seen[3]
    twins = _twins()
    steps = bytes([0] + [twins.get((b.decoder, b.tunnel, b.accept), 0) for b in bindings])
    _STEPS[id(registry)] = (bindings, len(bindings), flat, steps)
    return steps


# By registry: (its bindings list, their count, its flat table, the steps made from them).
# The list and table are held, so their identities cannot be reused while the entry lives.
_STEPS: dict[int, tuple[list[Binding], int, NDArray[np.int16], bytes]] = {}


def has_twin(registry: Registry) -> NDArray[np.bool_]:
    """By binding number of the registry's flat table (0: unbound): whether the pass
    decodes that binding."""
    twin: NDArray[np.bool_] = np.frombuffer(compiled_steps(registry), dtype=np.uint8) != 0
    return twin


def decode_prefix(
    t: PacketTable,
    registry: Registry,
    tunnel_depth: int,
    depth: NDArray[np.uint8] | None = None,
    max_steps: int = MAX_STEPS,
) -> int:
    """Run the pass over every packet of `t`; return how many it finished. `registry` is
    the dispatch table the pass follows (unbound keys end a descent, bound ones without a
    compiled twin are left to the engine), `tunnel_depth` the engine's limit on tunnels,
    `depth` (zeros, one per packet) receives the headers decoded, and no packet's `depth`
    grows past `max_steps`."""
    if depth is None:
        depth = np.zeros(t.n, dtype=np.uint8)
    cols = [loop_column(getattr(t, n), d, f"PacketTable.{n}", writable=True) for n, d in _TABLE]
    cols.append(loop_column(depth, np.uint8, "depth", writable=True))
    for layer in (t.outer, t.inner_raw):
        cols += [
            loop_column(getattr(layer, n), d, f"IPLayer.{n}", writable=True) for n, d in _LAYER
        ]
    flat, steps = registry.flat_table(), compiled_steps(registry)
    return int(_prefix.prefix(t.v.buf, tuple(cols), flat, steps, tunnel_depth, max_steps))
