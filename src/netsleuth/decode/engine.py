"""The decode loop: each round, every packet still descending is handed to the decoder bound
to its (namespace, key); decoders work on index subsets, never on one packet at a time."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.batch import RecordBatch
from netsleuth.decode.prefix import MAX_STEPS as PREFIX_STEPS
from netsleuth.decode.prefix import decode_prefix, has_twin
from netsleuth.decode.registry import REGISTRY, Binding, Registry
from netsleuth.decode.table import NS, Anomaly, PacketTable, Tunnel

DEFAULT_TUNNEL_DEPTH = 3
# No real packet has this many headers; a hostile one (an endless chain of 0x6558 Ethernet
# headers, say) is stopped here with decode.too_deep instead of looping.
MAX_ROUNDS = 40


def decode_batch(
    batch: RecordBatch,
    registry: Registry,
    *,
    tunnel_depth: int = DEFAULT_TUNNEL_DEPTH,
    prefix: bool = True,
) -> PacketTable:
    """Decode a batch. With `prefix` (the default) the compiled pass (prefix.py) first takes
    every packet as far as plain Ethernet/VLAN/IP/TCP|UDP goes, and the rounds below carry on
    from wherever it stopped; without it the NumPy decoders do everything (the reference the
    tests compare the two against)."""
    t = PacketTable(batch)
    # Link types outside the 16-bit range (or the -1 of an undescribed pcapng interface)
    # cannot be looked up: they are unsupported.
    bad_lt = (t.key < 0) | (t.key >= 1 << 16)
    t.key[bad_lt] = 0xFFFF
    # Headers the prefix pass decoded per packet: its rounds count against MAX_ROUNDS.
    depth = None
    twins = None
    # Only for the global registry: udp.py's choice of payload port consults REGISTRY itself,
    # so under another registry the NumPy decoders and the pass (which follows the registry
    # it is given) would pick different ports.
    if prefix and registry is REGISTRY and t.n:
        depth = np.zeros(t.n, dtype=np.uint8)
        decode_prefix(t, registry, tunnel_depth, depth)
        twins = has_twin(registry)
        active = np.flatnonzero(t.ns != NS.DONE)
    else:
        active = np.arange(t.n, dtype=np.int64)
    for r in range(MAX_ROUNDS):
        if depth is not None and r + PREFIX_STEPS >= MAX_ROUNDS:
            active = _within_budget(t, active, depth, r)
        if active.shape[0] == 0:
            break
        _round(t, registry, active, tunnel_depth)
        active = active[t.ns[active] != NS.DONE]
        if twins is not None and depth is not None and _resumes(t, registry, twins, active):
            # A round peeled a header the pass has no twin for (SLL, radiotap and 802.11,
            # LLC/SNAP, MPLS, PPPoE...) and left packets at one it has: the pass takes them
            # on from there, as it would have from the link layer. Every packet still
            # active has had r + 1 rounds, so the pass may take it to MAX_ROUNDS - r - 1
            # headers of its own (never past PREFIX_STEPS, which _within_budget assumes):
            # the bound falls on the same header as without the pass.
            cap = min(PREFIX_STEPS, MAX_ROUNDS - r - 1)
            decode_prefix(t, registry, tunnel_depth, depth, max_steps=cap)
            active = active[t.ns[active] != NS.DONE]
    else:
        if active.shape[0]:
            t.flag(active, Anomaly.DECODE_TOO_DEEP)
    t.settle_fcs()
    return t


def _resumes(
    t: PacketTable, registry: Registry, twins: NDArray[np.bool_], active: NDArray[np.int64]
) -> bool:
    """Whether any packet of `active` is at a (namespace, key) the pass decodes."""
    if active.shape[0] == 0:
        return False
    bid = registry.flat_table()[(t.ns[active].astype(np.int64) << 16) | t.key[active]]
    return bool(twins[bid].any())


def _within_budget(t: PacketTable, active: np.ndarray, depth: np.ndarray, r: int) -> np.ndarray:
    """The packets of round `r` still inside MAX_ROUNDS headers, counting those the prefix
    pass decoded (`depth`); the others get decode.too_deep. Only a packet with more headers
    than any real one is over."""
    spent = depth[active].astype(np.int64) + r >= MAX_ROUNDS
    if not spent.any():
        return active
    t.flag(active[spent], Anomaly.DECODE_TOO_DEEP)
    kept: np.ndarray = active[~spent]
    return kept


def _round(t: PacketTable, registry: Registry, active: np.ndarray, tunnel_depth: int) -> None:
    """One decoder call per packet of `active`: each group of packets bound to the same
    decoder in one call."""
    bindings = registry.bindings
    ns_a = t.ns[active]
    # One lookup for every namespace: the table is indexed by (namespace << 16) | key.
    bid = registry.flat_table()[(ns_a.astype(np.int64) << 16) | t.key[active]]
    unbound = bid == 0
    if unbound.any():
        _unbound(t, active[unbound], ns_a[unbound])
    if bid[0] == bid[-1] and (bid == bid[0]).all():
        # One binding for every packet (the first round, mostly): no grouping needed.
        if bid[0] != 0:
            _call(t, bindings[int(bid[0]) - 1], active, tunnel_depth)
        return
    order = np.argsort(bid, kind="stable")
    sorted_bid = bid[order]
    cuts = np.flatnonzero(np.diff(sorted_bid)) + 1
    starts = np.concatenate(([0], cuts))
    for s, e in zip(starts, np.append(cuts, sorted_bid.shape[0]), strict=True):
        b = int(sorted_bid[s])
        if b != 0:
            _call(t, bindings[b - 1], active[order[s:e]], tunnel_depth)


def _call(t: PacketTable, binding: Binding, idx: np.ndarray, depth: int) -> None:
    if binding.accept is not None:
        ok = binding.accept(t, idx)
        t.stop(idx[~ok])
        idx = idx[ok]
        if idx.shape[0] == 0:
            return
    if binding.tunnel != Tunnel.NONE:
        idx = _enter_tunnel(t, idx, binding.tunnel, depth)
        if idx.shape[0] == 0:
            return
    binding.decoder(t, idx)


def _unbound(t: PacketTable, idx: np.ndarray, ns: np.ndarray) -> None:
    lt = idx[ns == NS.LINKTYPE]
    if lt.shape[0]:
        # checks/linktype.py names these (capture.unsupported_linktype, with the link
        # type's name and count), so no anomaly bit: it would be the same finding twice.
        t.l2[lt] = 7  # L2.UNKNOWN
    # An EtherType nothing decodes: named for the outermost frame (where it reaches the
    # host's stack, as the 802.3 frames of incident 2 did); inside a tunnel it is just the
    # end of what we decode.
    et = idx[(ns == NS.ETHERTYPE) & (t.tunnels[idx] == 0)]
    if et.shape[0]:
        t.flag(et, Anomaly.L2_UNKNOWN_ETHERTYPE)
    t.stop(idx)


def _enter_tunnel(t: PacketTable, idx: np.ndarray, kind: Tunnel, depth: int) -> np.ndarray:
    deep = t.tunnels[idx] >= depth
    if deep.any():
        t.flag(idx[deep], Anomaly.TUNNEL_TOO_DEEP)
        idx = idx[~deep]
    first = idx[t.tunnels[idx] == 0]
    t.tunnel[first] = kind
    t.tun_off[first] = (t.pos[first] - t.start[first]).astype(np.int32)
    t.tunnel_inner[idx] = kind
    t.tunnels[idx] += 1
    return idx
