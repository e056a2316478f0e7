"""The three incident captures of shared/incidents/README.md, built packet by packet."""

from __future__ import annotations

import random

from netsleuth.craft.l2 import dot1q, ether, ieee8023, llc, pad, stp_bpdu
from netsleuth.craft.l3 import MF, ipv4
from netsleuth.craft.l4 import tcp, udp
from netsleuth.craft.tunnel import gre, gre_pptp, ppp

Capture = list[tuple[int, bytes]]  # (timestamp ns, Ethernet frame)
T0 = 1_700_000_000 * 1_000_000_000

# Incident 1 addresses, from the frame dump in ulb4-dpdk-tx-hang.zh.md.
OUTER_SRC, OUTER_DST = "172.31.141.195", "172.20.188.77"
INNER_SRC, INNER_DST = "27.18.141.4", "106.75.240.15"
GRE_KEY = 0x005C6DFC
VLAN = 10


def _mirror(inner_frame: bytes, ident: int) -> bytes:
    """Port-mirror encapsulation of incident 1: VLAN 10 / IPv4 / GRE(key) TEB."""
    g = gre(inner_frame, 0x6558, key=GRE_KEY)
    outer = ipv4(OUTER_SRC, OUTER_DST, g, 47, ident=ident, ttl=58)
    return ether(
        dot1q(outer, 0x0800, vid=VLAN), 0x8100, dst="82:ee:f5:55:ce:28", src="60:de:f3:2a:4f:7c"
    )


def _inner_eth(ip_packet: bytes) -> bytes:
    return ether(ip_packet, 0x0800, dst="6c:92:bf:a1:77:9c", src="fa:ff:ff:ff:ff:ff")


def incident1_poison_fragment(normal: int = 20) -> Capture:
    """GRE-TEB mirrored traffic with the fragment pair that hung the DPDK NIC.

    The TCP segment (originally DF) was split by a gateway into a 1400-byte-payload first
    fragment and a second fragment with total length 20 and no payload at offset 1400, MF=0;
    a switch padded that inner frame to 60 bytes with 26 zeros.
    """
    rng = random.Random(1)
    out: Capture = []
    t = T0
    for i in range(normal):
        sport = rng.randrange(1024, 65535)
        seg = tcp(
            INNER_SRC,
            INNER_DST,
            sport,
            443,
            rng.randbytes(rng.randrange(0, 600)),
            seq=rng.randrange(1 << 32),
            flags="PA",
        )
        out.append(
            (
                t,
                _mirror(
                    _inner_eth(ipv4(INNER_SRC, INNER_DST, seg, 6, ident=0x5000 + i, flags=0x2)),
                    0x8000 + i,
                ),
            )
        )
        t += 137_000
    seg = tcp(INNER_SRC, INNER_DST, 40000, 443, bytes(1380), seq=1, flags="A")
    first = ipv4(INNER_SRC, INNER_DST, seg[:1400], 6, ident=0x5866, flags=MF, ttl=52)
    # Total length 20, offset 1400, no payload; the 26 zeros are Ethernet padding.
    empty = ipv4(INNER_SRC, INNER_DST, b"", 6, ident=0x5866, frag_off=1400, ttl=52)
    out.append((t, _mirror(_inner_eth(first), 0x80A7)))
    out.append((t + 3_000, _mirror(pad(_inner_eth(empty)), 0x80A8)))
    return out


def incident2_stp_llc(seconds: int = 20) -> Capture:
    """RSTP BPDUs in 802.3/LLC frames (DSAP=SSAP=0x42) every 2 s among ordinary traffic:
    a host that is not a bridge has no handler for them and counts each in rx_dropped."""
    out: Capture = []
    rng = random.Random(2)
    bridge = b"\x80\x00" + bytes.fromhex("00259ec0ffee")
    bpdu = stp_bpdu(version=2, bpdu_type=0x02, root=bridge, bridge=bridge)
    frame = pad(ieee8023(llc(bpdu, dsap=0x42, ssap=0x42), src="00:25:9e:c0:ff:ee"))
    for s in range(seconds):
        t = T0 + s * 1_000_000_000
        if s % 2 == 0:
            out.append((t, frame))
        for k in range(5):
            seg = tcp("10.0.0.5", "10.0.0.9", 22, 50000 + k, rng.randbytes(64), flags="PA")
            out.append(
                (
                    t + (k + 1) * 100_000_000,
                    ether(
                        ipv4("10.0.0.5", "10.0.0.9", seg, 6, ident=s * 8 + k, flags=0x2),
                        0x0800,
                        dst="52:54:00:00:00:09",
                        src="52:54:00:00:00:05",
                    ),
                )
            )
    return out


def incident3_pptp(flows: int = 2000, packets_per_flow: int = 2) -> Capture:
    """PPTP (GRE version 1) between one pair of endpoints, two calls, thousands of inner
    TCP flows.

    An outer-only NIC hash, or a kernel flow dissector that does not enter GRE version 1
    (before Linux 4.10), sees a handful of outer flows: one queue and one CPU take it all.
    """
    rng = random.Random(3)
    out: Capture = []
    outer = [("203.0.113.10", "198.51.100.20", 7), ("203.0.113.10", "198.51.100.20", 9)]
    t = T0
    for i in range(flows * packets_per_flow):
        f = i % flows
        src, dst, call = outer[f % len(outer)]
        isrc = f"10.{(f >> 8) & 255}.{f & 255}.2"
        seg = tcp(
            isrc,
            "192.0.2.80",
            10000 + f,
            80,
            rng.randbytes(rng.randrange(0, 200)),
            flags="PA",
            seq=i,
        )
        inner = ipv4(isrc, "192.0.2.80", seg, 6, ident=i & 0xFFFF, flags=0x2)
        g = gre_pptp(ppp(inner, 0x0021), call_id=call, seq=i)
        out.append((t, ether(ipv4(src, dst, g, 47, ident=i & 0xFFFF), 0x0800)))
        t += 50_000
    return out


def incident3_gre_v0(flows: int = 2000) -> Capture:
    """The same inner traffic over GRE version 0 between two routers (one outer pair)."""
    rng = random.Random(4)
    out: Capture = []
    t = T0
    for f in range(flows):
        isrc = f"10.{(f >> 8) & 255}.{f & 255}.2"
        seg = udp(isrc, "192.0.2.53", 20000 + f, 53, rng.randbytes(40))
        inner = ipv4(isrc, "192.0.2.53", seg, 17, ident=f & 0xFFFF)
        out.append(
            (
                t,
                ether(
                    ipv4("203.0.113.1", "198.51.100.1", gre(inner, 0x0800), 47, ident=f & 0xFFFF),
                    0x0800,
                ),
            )
        )
        t += 50_000
    return out
