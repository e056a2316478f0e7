"""libpcap's own BPF interpreter (pcap_offline_filter) as the oracle for the programs
netsleuth builds, and the crafted frames of each encapsulation the inner-field filters
know, with the byte offsets (from the protocol layouts, not from our generator) that such
a filter must test."""

from __future__ import annotations

import ctypes

from netsleuth.bpf import Insn, _Insn, _libpcap, _Program
from netsleuth.craft import dot1q, ether, gre, ipv4, ipv6, ipv6_frag, tcp, udp, vxlan

INNER_SRC, INNER_DST = "27.18.5.6", "10.1.2.3"
INNER6_SRC, INNER6_DST = "2001:db8:1b12:5::6", "2001:db8:ffff::3"


class _Hdr(ctypes.Structure):
    _fields_ = [
        ("sec", ctypes.c_long),
        ("usec", ctypes.c_long),
        ("caplen", ctypes.c_uint32),
        ("len", ctypes.c_uint32),
    ]


def matches(program: list[Insn], frame: bytes) -> bool:
    lib = _libpcap()
    arr = (_Insn * len(program))(*(_Insn(*i) for i in program))
    prog = _Program(len(program), ctypes.cast(arr, ctypes.POINTER(_Insn)))
    hdr = _Hdr(0, 0, len(frame), len(frame))
    lib.pcap_offline_filter.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p]
    return bool(lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(hdr), frame))


def inner_ip(proto: str = "tcp", src: str = INNER_SRC) -> bytes:
    if proto == "tcp":
        return ipv4(src, INNER_DST, tcp(src, INNER_DST, 1234, 80, b"x" * 20), 6)
    return ipv4(src, INNER_DST, udp(src, INNER_DST, 1234, 53, b"x" * 20), 17)


def inner_ip6(proto: str = "tcp", src: str = INNER6_SRC, *, frag: bool = False) -> bytes:
    """An IPv6 packet (RFC 8200): TCP or UDP, or with frag=True a first fragment whose
    fragment header (next header 44) comes before the TCP header."""
    seg = (
        tcp(src, INNER6_DST, 1234, 80, b"x" * 20)
        if proto == "tcp"
        else udp(src, INNER6_DST, 1234, 53, b"x" * 20)
    )
    nh = 6 if proto == "tcp" else 17
    if frag:
        return ipv6(src, INNER6_DST, ipv6_frag(seg, nh, offset=0, more=True, ident=7), 44)
    return ipv6(src, INNER6_DST, seg, nh)


def outer(payload: bytes, proto: int) -> bytes:
    return ipv4("192.0.2.1", "192.0.2.2", payload, proto)


def inner_eth(ip: bytes) -> bytes:
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    return ether(ip, etype, dst="02:00:00:00:00:0b", src="02:00:00:00:00:0a")


def frame(encap: str, ip: bytes, *, key: bool = False) -> bytes:
    """Ethernet / [802.1Q] / encap / inner IPv4 `ip`."""
    layers = encap.split(",") if encap else []
    tunnel = next((e for e in layers if e != "vlan"), None)
    # The inner header's EtherType and IP-in-IPv4 protocol (IANA; RFC 2003, RFC 4213).
    etype, in4 = (0x86DD, 41) if ip[0] >> 4 == 6 else (0x0800, 4)
    if tunnel is None:
        l3, proto = ip, etype
    elif tunnel == "ipip":
        l3, proto = outer(ip, in4), 0x0800
    elif tunnel == "gre":
        l3, proto = outer(gre(ip, etype, key=0x5C6DFC if key else None), 47), 0x0800
    elif tunnel == "gre-teb":
        l3, proto = outer(gre(inner_eth(ip), 0x6558, key=0x5C6DFC if key else None), 47), 0x0800
    else:
        l3 = outer(udp("192.0.2.1", "192.0.2.2", 40000, 4789, vxlan(inner_eth(ip), vni=7)), 17)
        proto = 0x0800
    if "vlan" in layers:
        return ether(dot1q(l3, proto, vid=10), 0x8100)
    return ether(l3, proto)


def filter_bytes(
    encap: str, *, key: bool = False, src_bytes: int = 2, version: int = 4
) -> set[int]:
    """The frame offsets an `inner.src PREFIX and inner.proto P` filter must look at, the
    prefix `src_bytes` long (Ethernet: EtherType at 12; 802.1Q: TPID 12-13, EtherType
    16-17; IPv4 (RFC 791): version/IHL +0, flags/fragment offset +6-7, protocol +9, source
    +12; IPv6 (RFC 8200 section 3): version +0 (high nibble), next header +6, source +8;
    GRE (RFC 2784/2890): flags +0-1, protocol +2-3, 4 more with a key; VXLAN (RFC 7348):
    UDP dport +2-3, flags I bit at +8, inner Ethernet at +16)."""
    layers = encap.split(",") if encap else []
    et = 16 if "vlan" in layers else 12
    out = {et, et + 1} | ({12, 13} if "vlan" in layers else set())
    ip = et + 2
    tunnel = next((e for e in layers if e != "vlan"), None)
    if tunnel is not None:
        out |= {ip, ip + 6, ip + 7, ip + 9}
        if tunnel == "ipip":
            inner = ip + 20
        elif tunnel == "vxlan":
            u = ip + 20
            out |= {u + 2, u + 3, u + 8, u + 16 + 12, u + 16 + 13}
            inner = u + 16 + 14
        else:
            g = ip + 20
            out |= {g, g + 1, g + 2, g + 3}
            inner = g + (8 if key else 4)
            if tunnel == "gre-teb":
                out |= {inner + 12, inner + 13}
                inner += 14
    else:
        inner = ip
    proto, src = (9, 12) if version == 4 else (6, 8)
    out |= {inner, inner + proto} | {inner + src + i for i in range(src_bytes)}
    return out
