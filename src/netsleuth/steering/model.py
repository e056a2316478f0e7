"""The NIC RSS model and the kernel RPS model, applied to a decoded batch.

NIC (RSS): a Toeplitz hash over addresses, plus ports for the flow types configured as l4
(`ethtool -n DEV rx-flow-hash tcp4` shows "L4 bytes 0 & 1 [TCP/UDP src port]..."); packets
the NIC cannot parse get hash 0. An outer-only NIC (older ones) hashes tunnelled traffic on
the outer header; an inner-aware one looks inside GRE v0, IPIP/SIT, VXLAN and Geneve (PPTP
only if it says so). The queue is indir[hash % len(indir)] (low bits of the hash).

Kernel (RPS, net/core/dev.c get_rps_cpu): a NIC-supplied L4 hash is reused as it is; an
L3-only NIC hash (or none) is recomputed by the flow dissector (net/core/flow_dissector.c):
VLAN tags skipped, GRE v0 and IPIP/SIT entered with the GRE key in the key, GRE v1 (PPTP)
entered with the call id only from Linux 4.10, UDP tunnels (VXLAN, Geneve) not entered, an
IPv6 flow label stops dissection before the ports, fragments carry no ports, and the key is
made direction-symmetric (__flow_hash_consistentify) before hashing. The kernel's hash is
jhash with a secret random per boot, so no capture can predict the exact CPU: the model
hashes the same key with a seeded non-linear hash (mix64), which spreads like jhash does
and collapses exactly when the keys collapse. The CPU is
rps_cpus[(hash * n) >> 32] (reciprocal_scale). RFS (steering to the consuming CPU) is
not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import PacketTable, Tunnel
from netsleuth.steering import _mix64, _toeplitz, encaps
from netsleuth.steering.fields import FIELD_NAMES, FieldCache, Fields, be_bytes, layer_fields
from netsleuth.steering.toeplitz import MICROSOFT_KEY, MODEL_KEY_BYTES, Toeplitz

GRE_V1_SINCE = (4, 10)  # known-issues: linux-flow-dissector-gre-v1
INNER_AWARE = (Tunnel.GRE, Tunnel.IPIP, Tunnel.IP6, Tunnel.VXLAN, Tunnel.GENEVE)


@dataclass(frozen=True)
class NicModel:
    queues: int = 8
    parse: str = "outer"  # "outer" or "inner"
    pptp: bool = False  # an inner-aware NIC that also parses PPTP
    key: bytes = MICROSOFT_KEY
    indir: tuple[int, ...] = ()  # empty: i % queues over 128 entries
    # Flow types hashed with ports (ethtool rx-flow-hash "sdfn"); others hash addresses.
    l4: frozenset[str] = field(default_factory=lambda: frozenset({"tcp4", "tcp6", "udp4", "udp6"}))

    def __post_init__(self) -> None:
        # Refused here, not at the first packet the key cannot cover, mid-capture.
        if len(self.key) < MODEL_KEY_BYTES:
            raise ValueError(
                f"a {len(self.key)}-byte key cannot hash every packet: IPv6 with ports needs "
                f"{MODEL_KEY_BYTES} bytes (40 and 52 are what NICs carry)"
            )

    def table(self) -> NDArray[np.int64]:
        if self.indir:
            return np.array(self.indir, dtype=np.int64)
        return np.arange(128, dtype=np.int64) % self.queues


@dataclass(frozen=True)
class RpsModel:
    kernel: tuple[int, int]
    cpus: tuple[int, ...]
    seed: int = 0x5EED


def _kinds(kinds: list[Tunnel]) -> NDArray[np.bool_]:
    """A lookup table over tunnel kinds (t.tunnel values) that is True for `kinds`."""
    lut = np.zeros(256, dtype=np.bool_)
    lut[[int(k) for k in kinds]] = True
    return lut


# The ethtool flow types whose ports the model can hash: name -> (is IPv6, IP protocol).
L4_FLOWS = {"tcp4": (0, 6), "udp4": (0, 17), "tcp6": (1, 6), "udp6": (1, 17)}


def l4_table(flow_types: frozenset[str]) -> NDArray[np.bool_]:
    """[is IPv6, IP protocol] -> hashed with ports, from ethtool flow-type names."""
    lut = np.zeros((2, 256), dtype=np.bool_)
    for name, (v6, proto) in L4_FLOWS.items():
        lut[v6, proto] = name in flow_types
    return lut


def nic_hash(
    t: PacketTable, nic: NicModel, toeplitz: Toeplitz, cache: FieldCache | None = None
) -> tuple[NDArray[np.uint32], NDArray[np.bool_], Fields]:
    """(RSS hash, whether ports were hashed, the fields the NIC saw) per packet.

    Ports are hashed only for the flow types configured l4."""
    kinds = list(INNER_AWARE) + ([Tunnel.PPTP] if nic.pptp else [])
    use_inner = _kinds(kinds)[t.tunnel] if nic.parse == "inner" else np.zeros(t.n, bool)
    f = encaps.without_ip(layer_fields(t, use_inner, cache), encaps.hidden(t, encaps.NIC_BLIND))
    v6 = f.ver == 6
    l4 = f.has_ports & l4_table(nic.l4)[v6.view(np.uint8), f.proto]
    return rss_hash(toeplitz, f, l4), l4, f


def rss_hash(toeplitz: Toeplitz, f: Fields, l4: NDArray[np.bool_]) -> NDArray[np.uint32]:
    """The Toeplitz hash of each packet's addresses, and ports where l4; 0 without IP. One
    compiled pass (_toeplitz.c) with the meaning of rss_hash_numpy()."""
    out = np.empty(f.ver.shape[0], dtype=np.uint32)
    cols = (f.ver, f.src_hi, f.src_lo, f.dst_hi, f.dst_lo, f.sport, f.dport, l4)
    _toeplitz.toeplitz_fields(toeplitz.tables, tuple(np.ascontiguousarray(c) for c in cols), out)
    return out


def rss_hash_numpy(toeplitz: Toeplitz, f: Fields, l4: NDArray[np.bool_]) -> NDArray[np.uint32]:
    """rss_hash() by Toeplitz.hash_columns (the reference the tests hold it to). Ports not
    hashed are zeroed, and a zero byte adds nothing to a Toeplitz hash, so one pass per IP
    version serves both."""
    n = f.ver.shape[0]
    ports = be_bytes(np.where(l4, f.sport, 0), 2) + be_bytes(np.where(l4, f.dport, 0), 2)
    v4, v6 = f.ver == 4, f.ver == 6
    src, dst = be_bytes(f.src_lo, 8)[4:], be_bytes(f.dst_lo, 8)[4:]
    out = np.zeros(n, dtype=np.uint32)
    if v4.any():
        rows = np.flatnonzero(v4)
        out[rows] = toeplitz.hash_columns([c[rows] for c in src + dst + ports], rows.shape[0])
    if v6.any():
        rows = np.flatnonzero(v6)
        cols = [
            c[rows]
            for c in be_bytes(f.src_hi, 8)
            + be_bytes(f.src_lo, 8)
            + be_bytes(f.dst_hi, 8)
            + be_bytes(f.dst_lo, 8)
            + ports
        ]
        out[rows] = toeplitz.hash_columns(cols, rows.shape[0])
    return out


def rss_queue(hashes: NDArray[np.uint32], nic: NicModel) -> NDArray[np.int64]:
    table = nic.table()
    out: NDArray[np.int64] = table[hashes.astype(np.int64) % table.shape[0]]
    return out


def dissector_fields(
    t: PacketTable, kernel: tuple[int, int], cache: FieldCache | None = None
) -> tuple[Fields, NDArray[np.uint64]]:
    """What the flow dissector of `kernel` keys on: the fields of the layer it reaches, and
    the GRE key / PPTP call id of the tunnels it entered (0 where none)."""
    entered = [Tunnel.GRE, Tunnel.IPIP, Tunnel.IP6]
    if kernel >= GRE_V1_SINCE:
        entered.append(Tunnel.PPTP)
    enter = _kinds(entered)[t.tunnel]
    f = encaps.without_ip(layer_fields(t, enter, cache), encaps.hidden(t, encaps.DISSECTOR_BLIND))
    gre = enter & ((t.tunnel == Tunnel.GRE) | (t.tunnel == Tunnel.PPTP))
    keyid = np.where(gre & (t.gre_key >= 0), t.gre_key, 0).astype(np.uint64)
    return f, keyid


def dissector_words(t: PacketTable, kernel: tuple[int, int]) -> list[NDArray[np.uint64]]:
    """The flow dissector's key per packet (symmetric), as the six 64-bit words hashed:
    lower endpoint address (hi, lo), higher endpoint address (hi, lo), ports and protocol,
    GRE key / PPTP call id and IPv6 flow label. (The definition; dissector_hash computes
    the hash of these words in one compiled pass.)"""
    f, keyid = dissector_fields(t, kernel)
    label = np.where(f.ver == 6, f.flow_label, 0).astype(np.uint64)
    ports = f.has_ports & (label == 0)
    sport = np.where(ports, f.sport, 0).astype(np.uint64)
    dport = np.where(ports, f.dport, 0).astype(np.uint64)
    # __flow_hash_consistentify: order the endpoints so both directions give one key;
    # addresses compare as 128-bit numbers, equal ones by port.
    s_hi, s_lo, d_hi, d_lo = f.src_hi, f.src_lo, f.dst_hi, f.dst_lo
    same_hi = d_hi == s_hi
    swap = (d_hi < s_hi) | (same_hi & (d_lo < s_lo)) | (same_hi & (d_lo == s_lo) & (dport < sport))
    sel = np.where
    return [
        sel(swap, d_hi, s_hi),
        sel(swap, d_lo, s_lo),
        sel(swap, s_hi, d_hi),
        sel(swap, s_lo, d_lo),
        (sel(swap, dport, sport) << np.uint64(48))
        | (sel(swap, sport, dport) << np.uint64(32))
        | f.proto.astype(np.uint64),
        (keyid << np.uint64(32)) | label,
    ]


def dissector_hash(
    t: PacketTable, kernel: tuple[int, int], seed: int, cache: FieldCache | None = None
) -> NDArray[np.uint64]:
    """mix64(dissector_words(t, kernel), seed), in one compiled pass (_mix64.c)."""
    f, keyid = dissector_fields(t, kernel, cache)
    out = np.empty(t.n, dtype=np.uint64)
    _mix64.dissector_hash(_columns(f), keyid, seed & 0xFFFFFFFFFFFFFFFF, out)
    return out


def flow_id(f: Fields) -> NDArray[np.uint64]:
    """A 64-bit name per packet for its flow: mix64 of the addresses and of the ports (0
    where the packet has none) with the protocol; flow_id_numpy is the definition."""
    out = np.empty(f.ver.shape[0], dtype=np.uint64)
    _mix64.flow_hash(_columns(f), FLOW_SEED, out)
    return out


FLOW_SEED = 1


def flow_id_numpy(f: Fields) -> NDArray[np.uint64]:
    sport = np.where(f.has_ports, f.sport, 0).astype(np.uint64)
    dport = np.where(f.has_ports, f.dport, 0).astype(np.uint64)
    tail: NDArray[np.uint64] = np.bitwise_or(
        (sport << np.uint64(48)) | (dport << np.uint64(32)), f.proto.astype(np.uint64)
    )
    return mix64([f.src_hi, f.src_lo, f.dst_hi, f.dst_lo, tail], FLOW_SEED)


def _columns(f: Fields) -> tuple[NDArray[Any], ...]:
    return tuple(np.ascontiguousarray(getattr(f, k)) for k in FIELD_NAMES)


def mix64(words: list[NDArray[np.uint64]], seed: int) -> NDArray[np.uint64]:
    """A seeded non-linear 64-bit hash of rows given as word columns (the algorithm is in
    _mix64.c): multiply-xorshift per word, then murmur3's fmix64 finalizer. Stands in for
    the kernel's jhash with its per-boot secret (which no capture can know), and names
    flows. (Toeplitz would not do here: it is linear over GF(2), so sequential keys would
    spread with a perfection jhash does not have.)"""
    cols = tuple(np.ascontiguousarray(w, dtype=np.uint64) for w in words)
    out = np.empty(cols[0].shape[0], dtype=np.uint64)
    _mix64.mix64(cols, seed & 0xFFFFFFFFFFFFFFFF, out)
    return out


def rps_cpu(
    t: PacketTable,
    rps: RpsModel,
    nic_h: NDArray[np.uint32],
    nic_l4: NDArray[np.bool_],
    cache: FieldCache | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.uint32]]:
    soft = (dissector_hash(t, rps.kernel, rps.seed, cache) >> np.uint64(32)).astype(np.uint32)
    h = np.where(nic_l4, nic_h, soft).astype(np.uint32)
    cpus = np.array(rps.cpus, dtype=np.int64)
    idx = (h.astype(np.uint64) * np.uint64(len(cpus))) >> np.uint64(32)
    out: NDArray[np.int64] = cpus[idx.astype(np.int64)]
    return out, h
