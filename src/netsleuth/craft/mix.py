"""A deterministic mixed capture for the benchmark and for "clean traffic" tests.

Proportions (foundation issue): ~40% plain TCP, 10% VLAN, 10% IPv6, 10% GRE v0, 8% GRE v1
(PPTP), 5% IPIP, 5% VXLAN, 7% IPv4 fragments (complete, well-formed trains), 3% UDP, 2%
802.3 STP. With `poison=True` about one train in 200 is replaced by incident 1's shape: a
first fragment and a zero-payload last fragment padded to 60 bytes. `poison=False` gives a
clean capture: no poison trains, and no STP BPDUs (incident 2's frames, which scan
reports as a warning), their share going to plain TCP.

Every emitted fragment train gets a fresh IP identification (checksum recomputed): a pooled
train repeated with the same id would be one datagram to a reassembler.

Frames come from a pool of templates built with netsleuth.craft (a few thousand per kind),
cycled in a seeded random order: a million packets take seconds, not minutes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from netsleuth.craft.checksum import inet_checksum
from netsleuth.craft.l2 import ETH_MIN, dot1q, ether, ieee8023, llc, pad, stp_bpdu
from netsleuth.craft.l3 import MF, fragment_ipv4, ipv4, ipv6
from netsleuth.craft.l4 import tcp, udp
from netsleuth.craft.tunnel import gre, gre_pptp, ppp, vxlan

T0 = 1_700_000_000 * 1_000_000_000
POOL = 2048
Unit = list[bytes]  # one or more frames emitted back to back (a fragment train)

MIX: list[tuple[str, float]] = [
    ("tcp", 0.40),
    ("vlan", 0.10),
    ("ipv6", 0.10),
    ("gre", 0.10),
    ("pptp", 0.08),
    ("ipip", 0.05),
    ("vxlan", 0.05),
    ("fragments", 0.07),
    ("udp", 0.03),
    ("stp", 0.02),
]


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def v4(self, net: int = 10) -> str:
        r = self.r
        return f"{net}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def v6(self) -> str:
        return f"2001:db8:{self.r.randrange(1 << 16):x}::{self.r.randrange(1, 1 << 16):x}"

    def data(self, hi: int = 800) -> bytes:
        return self.r.randbytes(self.r.randrange(0, hi))

    def seg4(self, s: str, d: str) -> bytes:
        r = self.r
        return ipv4(
            s,
            d,
            tcp(
                s,
                d,
                r.randrange(1024, 65535),
                r.choice((80, 443, 22, 8080)),
                self.data(),
                seq=r.randrange(1 << 32),
                flags="PA",
            ),
            6,
            ident=r.randrange(1 << 16),
            flags=0x2,
        )

    def tcp(self) -> Unit:
        return [ether(self.seg4(self.v4(), self.v4()), 0x0800)]

    def vlan(self) -> Unit:
        inner = dot1q(self.seg4(self.v4(), self.v4()), 0x0800, vid=self.r.randrange(1, 4095))
        return [ether(inner, 0x8100)]

    def ipv6(self) -> Unit:
        s, d, r = self.v6(), self.v6(), self.r
        seg = tcp(s, d, r.randrange(1024, 65535), 443, self.data(), flags="PA")
        return [ether(ipv6(s, d, seg, 6), 0x86DD)]

    def gre(self) -> Unit:
        g = gre(self.seg4(self.v4(), self.v4()), 0x0800, key=self.r.randrange(16))
        return [ether(ipv4(self.v4(198), self.v4(198), g, 47), 0x0800)]

    def pptp(self) -> Unit:
        g = gre_pptp(
            ppp(self.seg4(self.v4(), self.v4()), 0x0021),
            call_id=self.r.randrange(64),
            seq=self.r.randrange(1 << 32),
        )
        return [ether(ipv4(self.v4(203), self.v4(203), g, 47), 0x0800)]

    def ipip(self) -> Unit:
        return [ether(ipv4(self.v4(198), self.v4(198), self.seg4(self.v4(), self.v4()), 4), 0x0800)]

    def vxlan(self) -> Unit:
        frame = ether(self.seg4(self.v4(), self.v4()), 0x0800)
        s, d = self.v4(172), self.v4(172)
        u = udp(
            s,
            d,
            self.r.randrange(49152, 65535),
            4789,
            vxlan(frame, vni=self.r.randrange(1, 1 << 24)),
        )
        return [ether(ipv4(s, d, u, 17), 0x0800)]

    def fragments(self) -> Unit:
        s, d, r = self.v4(), self.v4(), self.r
        size = r.randrange(1200, 2900)
        dgram = udp(s, d, r.randrange(1024, 65535), 4500, r.randbytes(size))
        full, rest = divmod(len(dgram), 1480)
        # An exact multiple of 1480 ends with a full fragment, not an empty one (that
        # would be incident 1's poison fragment, which the clean mix must not contain).
        sizes = [1480] * (full - 1) + [1480] if rest == 0 else [1480] * full + [rest]
        return [
            ether(f, 0x0800)
            for f in fragment_ipv4(s, d, dgram, 17, sizes=sizes, ident=r.randrange(1 << 16))
        ]

    def udp(self) -> Unit:
        s, d = self.v4(), self.v4()
        u = udp(s, d, self.r.randrange(1024, 65535), 53, self.data(300))
        return [ether(ipv4(s, d, u, 17, ident=self.r.randrange(1 << 16)), 0x0800)]

    def stp(self) -> Unit:
        return [pad(ieee8023(llc(stp_bpdu(), dsap=0x42, ssap=0x42)))]

    def poison(self) -> Unit:
        """Incident 1's train: 1400 payload bytes, then a zero-payload last fragment."""
        s, d, ident = self.v4(), self.v4(), self.r.randrange(1 << 16)
        seg = tcp(s, d, 40000, 443, bytes(1380), flags="A")
        first = ipv4(s, d, seg[:1400], 6, ident=ident, flags=MF)
        empty = ipv4(s, d, b"", 6, ident=ident, frag_off=1400)
        return [ether(first, 0x0800), pad(ether(empty, 0x0800))]


def mixed_capture(
    packets: int, *, seed: int = 1, poison: bool = True, id_pool: int = 1 << 16
) -> Iterator[tuple[int, bytes]]:
    """Yield (timestamp ns, frame) for exactly `packets` frames. Fragmented datagrams take
    IPv4 ids in turn from 0..id_pool-1: a small pool makes ids recur within a batch, as on a
    busy pair where the 16-bit id wraps in seconds."""
    g = _Gen(seed)
    builders: dict[str, Callable[[], Unit]] = {name: getattr(g, name) for name, _ in MIX}
    pools = {name: [build() for _ in range(POOL)] for name, build in builders.items()}
    toxic = [g.poison() for _ in range(64)]
    # Fragment trains weigh more than one packet each: pick units so that packets, not
    # units, follow the proportions.
    per_unit = {name: sum(len(u) for u in pool) / POOL for name, pool in pools.items()}
    mix = MIX if poison else [(n, s + 0.02 if n == "tcp" else s) for n, s in MIX if n != "stp"]
    names = [name for name, _ in mix]
    weights = [share / per_unit[name] for name, share in mix]
    ident = 0
    r = random.Random(seed + 1)
    emitted, ts = 0, T0
    while emitted < packets:
        for name in r.choices(names, weights, k=4096):
            unit = pools[name][r.randrange(POOL)]
            if poison and name == "fragments" and r.random() < 0.005:
                unit = toxic[r.randrange(len(toxic))]
            if name == "fragments":
                ident = (ident + 1) % id_pool
                unit = [_restamp(f, ident) for f in unit]
            for frame in unit:
                if emitted == packets:
                    return
                # As seen on the wire: frames under 60 bytes arrive padded with zeros.
                yield ts, frame if len(frame) >= ETH_MIN else frame + bytes(ETH_MIN - len(frame))
                ts += 1_000
                emitted += 1


def _restamp(frame: bytes, ident: int) -> bytes:
    """Set the IPv4 identification of an untagged Ethernet/IPv4 frame, fixing the checksum."""
    hdr = bytearray(frame[14:34])
    hdr[4:6] = ident.to_bytes(2, "big")
    hdr[10:12] = b"\0\0"
    hdr[10:12] = inet_checksum(bytes(hdr)).to_bytes(2, "big")
    return frame[:14] + bytes(hdr) + frame[34:]
