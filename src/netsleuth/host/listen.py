"""How many listening sockets one SYN makes the kernel walk (incident 3's third cause).

Before Linux 4.17 __inet_lookup_listener searched a table of INET_LHTABLE_SIZE = 32 buckets
keyed by the port alone (inet_lhashfn), scoring every socket in the bucket: with
SO_REUSEPORT every worker's socket counts, so 5000 ports x 50 workers / 32 buckets walks
~7800 sockets per SYN, in softirq. Linux 4.17 added lhash2, keyed by port and address, where
a reuseport group answers at its first socket; 4.17-4.20 used it only when the port bucket
held more than 10 sockets; from 5.0 it is the only lookup. (Versions per the incident
write-up and the issue; the bucket of a port is (port + net_hash_mix(net)) & 31, with the
mix taken as 0: init_net on older kernels.)
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass

from netsleuth.sources.procnet import Listener

LHTABLE_SIZE = 32  # INET_LHTABLE_SIZE, include/net/inet_hashtables.h
LHASH2_SINCE = (4, 17)
LHASH2_ONLY_SINCE = (5, 0)
LHASH2_THRESHOLD = 10  # 4.17-4.20: lhash2 used when the port bucket holds more than this
# lhash2 is sized at boot from memory (tcp_listen_portaddr_hash); 65536 is a typical server
# figure. Only the new-scheme estimate depends on it.
LHASH2_BUCKETS = 65536


@dataclass(frozen=True)
class ListenModel:
    sockets: int
    ports: int
    groups: int  # distinct (address, port): a reuseport group counts once
    biggest_group: int
    kernel: tuple[int, int]
    per_syn_old: float  # sockets walked per SYN, port-only 32-bucket table (mean over ports)
    worst_old: int
    per_syn_new: float  # with lhash2 (mean over ports)
    per_syn_running: float  # under the scheme of `kernel`
    buckets: tuple[int, ...]  # sockets per bucket of the 32-bucket table


def model(
    listeners: list[Listener], kernel: tuple[int, int], *, lhash2_buckets: int = LHASH2_BUCKETS
) -> ListenModel:
    groups = Counter((s.address, s.port) for s in listeners)
    per_port = Counter(s.port for s in listeners)
    buckets = [0] * LHTABLE_SIZE
    for port, n in per_port.items():
        buckets[port & (LHTABLE_SIZE - 1)] += n
    ports = list(per_port)
    # A SYN to port p walks its whole bucket in the old scheme.
    walk_old = {p: float(buckets[p & (LHTABLE_SIZE - 1)]) for p in ports}
    # lhash2: each (address, port) group hashes to one bucket; a lookup walks, on
    # average, half the other groups' sockets sharing its bucket, then its own group
    # answers at its first socket (reuseport selection by hash).
    in_bucket: Counter[int] = Counter()
    bucket_of = {g: zlib.crc32(f"{g[0]}|{g[1]}".encode()) % lhash2_buckets for g in groups}
    for g, n in groups.items():
        in_bucket[bucket_of[g]] += n
    per_group = {g: 1 + (in_bucket[bucket_of[g]] - n) / 2 for g, n in groups.items()}
    walk_new: dict[int, float] = {}
    for (_, port), w in per_group.items():
        walk_new[port] = max(walk_new.get(port, 0.0), w)
    mean_old = sum(walk_old.values()) / len(ports) if ports else 0.0
    mean_new = sum(walk_new.values()) / len(ports) if ports else 0.0
    if kernel >= LHASH2_ONLY_SINCE:
        running = mean_new
    elif kernel >= LHASH2_SINCE:
        running = (
            (
                sum(walk_new[p] if walk_old[p] > LHASH2_THRESHOLD else walk_old[p] for p in ports)
                / len(ports)
            )
            if ports
            else 0.0
        )
    else:
        running = mean_old
    return ListenModel(
        len(listeners),
        len(per_port),
        len(groups),
        max(groups.values(), default=0),
        kernel,
        round(mean_old, 1),
        int(max(walk_old.values(), default=0)),
        round(mean_new, 1),
        round(running, 1),
        tuple(buckets),
    )
