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

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import PacketTable, Tunnel
from netsleuth.steering.fields import Fields, layer_fields
from netsleuth.steering.toeplitz import MICROSOFT_KEY, Toeplitz

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

    def table(self) -> NDArray[np.int64]:
        if self.indir:
            return np.array(self.indir, dtype=np.int64)
        return np.arange(128, dtype=np.int64) % self.queues


@dataclass(frozen=True)
class RpsModel:
    kernel: tuple[int, int]
    cpus: tuple[int, ...]
    seed: int = 0x5EED


def flow_type(f: Fields) -> NDArray[np.str_]:
    kind = np.where(f.proto == 6, "tcp", np.where(f.proto == 17, "udp", "other"))
    fam = np.where(f.ver == 6, "6", "4")
    out: NDArray[np.str_] = np.char.add(kind, fam)
    return out


def _rows(f: Fields, sel: NDArray[np.bool_], ports: bool, v6: bool) -> NDArray[np.uint8]:
    width = 16 if v6 else 4
    parts = [f.src[sel, :width], f.dst[sel, :width]]
    if ports:
        parts += [
            f.sport[sel].astype(">u2").view(np.uint8).reshape(-1, 2),
            f.dport[sel].astype(">u2").view(np.uint8).reshape(-1, 2),
        ]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def nic_hash(
    t: PacketTable, nic: NicModel, toeplitz: Toeplitz
) -> tuple[NDArray[np.uint32], NDArray[np.bool_], Fields]:
    """(RSS hash, whether ports were hashed, the fields the NIC saw) per packet."""
    kinds = list(INNER_AWARE) + ([Tunnel.PPTP] if nic.pptp else [])
    use_inner = np.isin(t.tunnel, kinds) if nic.parse == "inner" else np.zeros(t.n, bool)
    f = layer_fields(t, use_inner)
    l4 = f.has_ports & np.isin(flow_type(f), sorted(nic.l4))
    out = np.zeros(t.n, dtype=np.uint32)
    for v6 in (False, True):
        for ports in (False, True):
            sel = (f.ver == (6 if v6 else 4)) & (l4 == ports)
            if sel.any():
                out[sel] = toeplitz.hash_rows(_rows(f, sel, ports, v6))
    return out, l4, f


def rss_queue(hashes: NDArray[np.uint32], nic: NicModel) -> NDArray[np.int64]:
    table = nic.table()
    out: NDArray[np.int64] = table[hashes.astype(np.int64) % table.shape[0]]
    return out


def dissector_key(t: PacketTable, kernel: tuple[int, int]) -> NDArray[np.uint8]:
    """The flow dissector's key per packet, as bytes ready to hash (symmetric)."""
    enter = np.isin(t.tunnel, (Tunnel.GRE, Tunnel.IPIP, Tunnel.IP6))
    if kernel >= GRE_V1_SINCE:
        enter |= t.tunnel == Tunnel.PPTP
    f = layer_fields(t, enter)
    gre = enter & ((t.tunnel == Tunnel.GRE) | (t.tunnel == Tunnel.PPTP))
    keyid = np.where(gre & (t.gre_key >= 0), t.gre_key, 0).astype(np.uint32)
    label = np.where(f.ver == 6, f.flow_label, 0).astype(np.uint32)
    ports = f.has_ports & (label == 0)
    sport = np.where(ports, f.sport, 0).astype(np.uint16)
    dport = np.where(ports, f.dport, 0).astype(np.uint16)
    src, dst = f.src, f.dst
    # __flow_hash_consistentify: order the endpoints so both directions give one key.
    swap = _less(dst, src) | (np.all(dst == src, axis=1) & (dport < sport))
    src, dst = np.where(swap[:, None], dst, src), np.where(swap[:, None], src, dst)
    sport, dport = np.where(swap, dport, sport), np.where(swap, sport, dport)
    return np.ascontiguousarray(
        np.concatenate(
            [
                src,
                dst,
                sport.astype(">u2").view(np.uint8).reshape(-1, 2),
                dport.astype(">u2").view(np.uint8).reshape(-1, 2),
                f.proto.reshape(-1, 1),
                keyid.astype(">u4").view(np.uint8).reshape(-1, 4),
                label.astype(">u4").view(np.uint8).reshape(-1, 4),
            ],
            axis=1,
        )
    )


def _less(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Row-wise lexicographic a < b for (n, k) byte arrays."""
    diff = a != b
    first = np.argmax(diff, axis=1)
    rows = np.arange(a.shape[0])
    out: NDArray[np.bool_] = diff.any(axis=1) & (a[rows, first] < b[rows, first])
    return out


def mix64(rows: NDArray[np.uint8], seed: int) -> NDArray[np.uint64]:
    """A seeded non-linear 64-bit hash of each byte row: multiply-xorshift per 8-byte word,
    then murmur3's fmix64 finalizer. Stands in for the kernel's jhash with its per-boot
    secret (which no capture can know), and names flows; a few vector operations a word.
    (Toeplitz would not do here: it is linear over GF(2), so sequential keys would spread
    with a perfection jhash does not have.)"""
    width = -(-rows.shape[1] // 8) * 8
    padded = np.zeros((rows.shape[0], width), dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    words = padded.view("<u8")
    h = np.full(rows.shape[0], (seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF, np.uint64)
    with np.errstate(over="ignore"):
        for k in range(words.shape[1]):
            h ^= words[:, k]
            h *= np.uint64(0xFF51AFD7ED558CCD)
            h ^= h >> np.uint64(32)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
    return h


def rps_cpu(
    t: PacketTable, rps: RpsModel, nic_h: NDArray[np.uint32], nic_l4: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.uint32]]:
    soft = (mix64(dissector_key(t, rps.kernel), rps.seed) >> np.uint64(32)).astype(np.uint32)
    h = np.where(nic_l4, nic_h, soft).astype(np.uint32)
    cpus = np.array(rps.cpus, dtype=np.int64)
    idx = (h.astype(np.uint64) * np.uint64(len(cpus))) >> np.uint64(32)
    out: NDArray[np.int64] = cpus[idx.astype(np.int64)]
    return out, h
