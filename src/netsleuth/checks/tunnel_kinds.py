"""Tunnel packets counted by kind, every nesting level: for the summary, over every decoded
batch (scan.Summary) and over the outer datagrams rebuilt where the batch could not see
their tunnel (outer_reassembly: a UDP tunnel in outer fragments)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import PacketTable, Tunnel

# Summary names of the outermost tunnel: the Tunnel kinds, refined where the kind alone
# does not say it (IP-in-IP by both versions, RFC 2003 / 4213 / 2473; GRE carrying Ethernet).
TUNNEL_NAMES = [k.name.lower() for k in Tunnel] + ["4in6", "6in4", "6in6", "gre-teb"]
_4IN6, _6IN4, _6IN6, _GRE_TEB = range(len(Tunnel), len(Tunnel) + 4)


def tunnel_codes(t: PacketTable) -> NDArray[np.int64]:
    code = t.tunnel.astype(np.int64)
    v6_outer = t.outer.ver == 6
    code[(t.tunnel == Tunnel.IPIP) & v6_outer] = _4IN6
    code[(t.tunnel == Tunnel.IP6) & ~v6_outer] = _6IN4
    code[(t.tunnel == Tunnel.IP6) & v6_outer] = _6IN6
    code[(t.tunnel == Tunnel.GRE) & (t.gre_proto == 0x6558)] = _GRE_TEB
    return code


def count_tunnels(
    t: PacketTable, into: Counter[str], rows: NDArray[np.bool_] | None = None
) -> None:
    """Add the tunnel packets of `t` (of `rows`, if given) to `into`, by kind. Every nesting
    level counts: the innermost tunnel too (PPTP inside 4in6 is one 4in6 and one pptp).
    The table keeps the outermost and innermost kinds, so a middle level of three is not
    counted."""
    tun = t.tunnels > 0 if rows is None else (t.tunnels > 0) & rows
    if not tun.any():
        return
    counts = np.bincount(tunnel_codes(t)[tun], minlength=len(TUNNEL_NAMES))
    deep = t.tunnel_inner[tun & (t.tunnels >= 2)].astype(np.int64)
    counts[: len(Tunnel)] += np.bincount(deep, minlength=len(Tunnel))[: len(Tunnel)]
    for code, n in enumerate(counts[1:].tolist(), start=1):
        if n:
            into[TUNNEL_NAMES[code]] += n
