"""Capture filters: tcpdump syntax compiled to classic BPF by libpcap, and inner-field terms
(`inner.src 27.18.0.0/16 and inner.proto tcp`) turned into a tcpdump expression at the
fixed offsets of the encapsulations the user names (`--encap vlan,gre-teb`): the filter
incident 1's team wrote by hand (`ip[54:4] & ...` behind GRE-TEB and a VLAN tag).

Why libpcap through ctypes and not `tcpdump -ddd`: libpcap is the compiler tcpdump itself
calls (pcap_compile), it is on the machine whenever tcpreplay is (Debian libpcap0.8), it
runs in-process, and it needs no tcpdump install. pcap_open_dead gives a handle with no
interface, so compiling needs no privilege.

VLAN tags and the kernel: the Linux receive path moves the outermost 802.1Q/802.1ad tag
into skb metadata before the packet taps (net/core/dev.c, __netif_receive_skb_core:
skb_vlan_untag), so a socket filter sees the frame without it. The expression printed for
files and for tcpdump keeps the tag in line (absolute `ether[...]` offsets, as in a pcap);
the program attached to our socket is compiled for the frame without its first tag and
starts with a check of the tag's presence through the kernel's ancillary load
(SKF_AD_VLAN_TAG_PRESENT, include/uapi/linux/filter.h).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
from dataclasses import dataclass

from netsleuth.errors import FacilityError, InputError
from netsleuth.sources.cpulist import uint

Insn = tuple[int, int, int, int]  # (code, jt, jf, k): struct sock_filter / struct bpf_insn

# pcap_open_dead takes a DLT_ value, which is the LINKTYPE_ value except for a few: raw IP
# is DLT_RAW, 12 on Linux (libpcap pcap/dlt.h; LINKTYPE_RAW is 101 in files).
LINKTYPE_DLTS = {101: 12}
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
# include/uapi/linux/filter.h: ancillary data offsets for BPF_LD ABS.
SKF_AD_OFF = -0x1000
SKF_AD_VLAN_TAG_PRESENT = 48
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06

ETH_P_8021Q, ETH_P_IPV4, ETH_P_TEB, ETH_P_IPV6 = 0x8100, 0x0800, 0x6558, 0x86DD
# The inner header's EtherType (Ethernet, GRE protocol type: RFC 2784 section 2.4) and its
# IPv4 protocol number when carried directly in IPv4: 4 (IP in IP, RFC 2003) or 41 (IPv6 in
# IPv4, RFC 4213 section 3.5).
ETHERTYPE = {4: ETH_P_IPV4, 6: ETH_P_IPV6}
IN_IPV4 = {4: 4, 6: 41}
GRE_KEY = 0x2000  # RFC 2890: K bit of the GRE flags
VXLAN_PORT = 4789  # RFC 7348 section 5
PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "icmp6": 58}
# IPv6 extension headers (IANA protocol numbers, RFC 8200 section 4): with one of them, the
# Next Header field at the fixed offset names it, not the transport.
PROTOCOLS |= {"hopopt": 0, "ipv6-route": 43, "ipv6-frag": 44, "ah": 51, "ipv6-opts": 60}
ENCAPS = ("vlan", "gre", "gre-teb", "vxlan", "ipip")


class _Insn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise FacilityError("--filter needs libpcap (Debian: apt-get install libpcap0.8)") from None
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_Program),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    ]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def pcap_compile(expr: str, *, snaplen: int = 262144, linktype: int = 1) -> list[Insn]:
    """The classic BPF program libpcap makes of a tcpdump expression, for frames of
    `linktype` (Ethernet unless said)."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(LINKTYPE_DLTS.get(linktype, linktype), snaplen)
    if not handle:
        raise FacilityError("libpcap could not open a dead handle")
    prog = _Program()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN):
            msg = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
            raise InputError("--filter", f"{expr!r}: {msg}")
        out = [(i.code, i.jt, i.jf, i.k) for i in prog.bf_insns[: prog.bf_len]]
        lib.pcap_freecode(ctypes.byref(prog))
        return out
    finally:
        lib.pcap_close(handle)


@dataclass(frozen=True, slots=True)
class Path:
    """One way the encapsulation can be laid out: the byte tests that identify it and
    where the inner IPv4 header starts (offsets from the start of the frame)."""

    tests: tuple[str, ...]
    inner: int
    version: int = 4  # the inner header's


def _eq(off: int, size: int, value: int, mask: int | None = None) -> str:
    spec = f"ether[{off}:{size}]" if size != 1 else f"ether[{off}]"
    if mask is not None:
        spec += f" & {mask:#x}"
    return f"{spec} = {value:#x}"


def layouts(encap: list[str], *, strip_first_vlan: bool, version: int = 4) -> list[Path]:
    """Every fixed-offset layout of Ethernet / `encap` / inner IPv4 or IPv6 (`version`).
    GRE is taken with and without a key (RFC 2890; incident 1's mirror used one); checksum
    and sequence fields are not. The outer IPv4 header must be 20 bytes and not a
    non-first fragment, or the inner fields are not at fixed offsets. `ipip` is protocol 4
    for an inner IPv4 and 41 (6in4) for an inner IPv6."""
    inner_type = ETHERTYPE[version]
    unknown = [e for e in encap if e not in ENCAPS]
    if unknown:
        raise InputError("--encap", f"unknown {', '.join(unknown)}; known: {', '.join(ENCAPS)}")
    tunnels = [e for e in encap if e != "vlan"]
    if len(tunnels) > 1 or (tunnels and encap[-1] == "vlan"):
        raise InputError("--encap", "give VLAN tags, then at most one tunnel (vlan,gre-teb)")
    et = 12
    tests: list[str] = []
    for n, _ in enumerate(e for e in encap if e == "vlan"):
        if n == 0 and strip_first_vlan:
            continue  # the kernel took the tag out: checked by the ancillary load
        tests.append(_eq(et, 2, ETH_P_8021Q))
        et += 4
    ip = et + 2
    if not tunnels:
        return [Path((*tests, _eq(et, 2, inner_type)), ip, version)]
    tests.append(_eq(et, 2, ETH_P_IPV4))
    outer = [*tests, _eq(ip, 1, 0x45), _eq(ip + 6, 2, 0, 0x1FFF)]
    kind = tunnels[0]
    if kind == "ipip":
        return [Path((*outer, _eq(ip + 9, 1, IN_IPV4[version])), ip + 20, version)]
    if kind == "vxlan":
        udp = ip + 20
        t = (*outer, _eq(ip + 9, 1, 17), _eq(udp + 2, 2, VXLAN_PORT), _eq(udp + 8, 1, 0x08, 0x08))
        return [Path((*t, _eq(udp + 16 + 12, 2, inner_type)), udp + 16 + 14, version)]
    paths = []
    for flags, size in ((0, 4), (GRE_KEY, 8)):
        gre = ip + 20
        proto = ETH_P_TEB if kind == "gre-teb" else inner_type
        t = (*outer, _eq(ip + 9, 1, 47), _eq(gre, 2, flags), _eq(gre + 2, 2, proto))
        if kind == "gre-teb":
            paths.append(Path((*t, _eq(gre + size + 12, 2, inner_type)), gre + size + 14, version))
        else:
            paths.append(Path(t, gre + size, version))
    return paths


# Where the fields are in the inner header: IPv4 (RFC 791 section 3.1): protocol +9,
# source +12, destination +16; IPv6 (RFC 8200 section 3): next header +6, source +8,
# destination +24.
PROTO_AT = {4: 9, 6: 6}
SRC_AT = {4: 12, 6: 8}
DST_AT = {4: 16, 6: 24}
ADDRESS_TERMS = ("inner.src", "inner.dst", "inner.host")


def _network(term: str, arg: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        net = ipaddress.ip_network(arg, strict=False)
    except ValueError:
        raise InputError(
            "--filter", f"{term} needs an IPv4 or IPv6 address or CIDR, not {arg!r}"
        ) from None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.scope_id is not None:
        # ipaddress keeps "%eth0", but no header carries a zone (RFC 4007 section 11):
        # matching the bare address would be a different filter than the one written.
        raise InputError(
            "--filter", f"{term} {arg!r}: a packet carries no scope zone, give the address alone"
        )
    return net


def _prefix_tests(net: ipaddress.IPv4Network | ipaddress.IPv6Network, at: int) -> list[str]:
    """The address at `at` is in `net`: one 4-byte load per word the prefix reaches (BPF
    loads at most a word), the last one masked; none for /0."""
    width = net.max_prefixlen // 8
    value = net.network_address.packed
    mask = net.netmask.packed
    out = []
    for w in range(0, width, 4):
        m = int.from_bytes(mask[w : w + 4], "big")
        if m == 0:
            break
        v = int.from_bytes(value[w : w + 4], "big")
        out.append(_eq(at + w, 4, v) if m == 0xFFFFFFFF else _eq(at + w, 4, v, m))
    return out


def _inner_tests(term: str, arg: str, at: int, version: int) -> str:
    if term in ADDRESS_TERMS:
        net = _network(term, arg)
        src = " and ".join(_prefix_tests(net, at + SRC_AT[version])) or "1 = 1"
        dst = " and ".join(_prefix_tests(net, at + DST_AT[version])) or "1 = 1"
        return {"inner.src": f"({src})", "inner.dst": f"({dst})"}.get(term, f"(({src}) or ({dst}))")
    if term == "inner.proto":
        # uint: int() raised on '²' (a digit to str.isdigit) and on 4,300 digits or more.
        num = uint(arg, 256) if arg.isdigit() else PROTOCOLS.get(arg.lower())
        if num is None or not 0 <= num <= 255:
            raise InputError(
                "--filter", f"inner.proto {arg[:40]!r}: give tcp, udp, icmp, ... or 0-255"
            )
        return _eq(at + PROTO_AT[version], 1, num)
    raise InputError(
        "--filter", f"unknown term {term!r}: inner.src, inner.dst, inner.host, inner.proto"
    )


def _versions(terms: list[tuple[str, str]]) -> list[int]:
    """The inner IP versions the terms can match: their addresses' (all one version), or
    both without an address."""
    found = {_network(t, a).version for t, a in terms if t in ADDRESS_TERMS}
    if len(found) > 1:
        raise InputError(
            "--filter", "an inner header is IPv4 or IPv6: give addresses of one version"
        )
    return sorted(found) or [4, 6]


def inner_expression(expr: str, encap: list[str], *, strip_first_vlan: bool = False) -> str:
    """The tcpdump expression of `inner.TERM ARG [and ...]` behind `encap`: one
    alternative per layout and inner IP version."""
    words = expr.replace("&&", " and ").split()
    terms: list[tuple[str, str]] = []
    while words:
        if len(words) < 2:
            raise InputError("--filter", f"{expr!r}: each inner term takes one argument")
        terms.append((words[0], words[1]))
        words = words[2:]
        if words:
            if words[0] != "and":
                raise InputError("--filter", f"{expr!r}: inner terms join with 'and' only")
            words = words[1:]
            if not words:  # tcpdump refuses a dangling 'and' too: a term was lost
                raise InputError("--filter", f"{expr!r}: a term must follow 'and'")
    alts = []
    for version in _versions(terms):
        for path in layouts(encap, strip_first_vlan=strip_first_vlan, version=version):
            inner = [
                _eq(path.inner, 1, version << 4, 0xF0),
                *(_inner_tests(t, a, path.inner, version) for t, a in terms),
            ]
            alts.append("(" + " and ".join([*path.tests, *inner]) + ")")
    return " or ".join(alts)


@dataclass(frozen=True, slots=True)
class Compiled:
    expression: str  # tcpdump syntax, frames as in a capture file (tags in line)
    file_program: list[Insn]  # that expression compiled: for files, tcpdump -r
    program: list[Insn]  # what is attached to the live socket


def compile_filter(expr: str, encap: str = "", *, linktype: int = 1) -> Compiled:
    """A tcpdump expression as it is (for frames of `linktype`); inner.* terms at the
    offsets of `encap` behind an Ethernet header."""
    layers = [e.strip() for e in encap.split(",") if e.strip()]
    if not expr.lstrip().startswith("inner."):
        if layers:
            raise InputError("--encap", "--encap goes with inner.* terms, not a tcpdump expression")
        prog = pcap_compile(expr, linktype=linktype)
        return Compiled(expr, prog, prog)
    if linktype != 1:
        raise InputError(
            "--filter",
            f"inner.* terms are offsets behind an Ethernet header; this interface's frames "
            f"are link type {linktype}: write the tcpdump expression for them instead",
        )
    text = inner_expression(expr, layers)
    file_prog = pcap_compile(text)
    if "vlan" not in layers:
        return Compiled(text, file_prog, file_prog)
    stripped = pcap_compile(inner_expression(expr, layers, strip_first_vlan=True))
    # [ld vlan_avail; jeq #1 -> skip one; ret #0] then the program for the untagged frame.
    # Classic BPF jumps are relative and forward, so prepending cannot break them.
    guard = [
        (BPF_LD_W_ABS, 0, 0, (SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT) & 0xFFFFFFFF),
        (BPF_JEQ_K, 1, 0, 1),
        (BPF_RET_K, 0, 0, 0),
    ]
    return Compiled(text, file_prog, guard + stripped)


def format_program(prog: list[Insn]) -> str:
    """`tcpdump -ddd` style: the count, then one 'code jt jf k' line per instruction (the
    form SO_ATTACH_FILTER and `tcpdump -r FILE -d` users paste)."""
    return "\n".join([str(len(prog)), *(f"{c} {jt} {jf} {k}" for c, jt, jf, k in prog)])
