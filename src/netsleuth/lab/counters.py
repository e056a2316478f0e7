"""The receiving namespace's counters, read after every frame: /proc/net/snmp, netstat and
snmp6 of that namespace (files opened from inside it stay bound to it), and each device's
rtnl_link_stats64 by one RTM_GETLINK dump on a netlink socket made there (rx_nohandler is
in no /proc file). Parsing reuses host/counters.py; the names are the kernel's own.

Names in a frame's counters: Ip, IpExt and TcpExt names bare (ReasmFails, InHdrErrors,
InCsumErrors), the other MIB groups prefixed (Udp.NoPorts, Icmp.OutDestUnreachs), snmp6
names as printed (Ip6ReasmFails), the receiving veth's link counters bare (rx_dropped,
rx_nohandler) and a tunnel device's prefixed by its kind (vxlan:rx_dropped)."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from netsleuth.host.counters import parse_mib, parse_softnet

BARE_GROUPS = ("Ip", "IpExt", "TcpExt")
# Gauges and constants among the MIB columns (RFC 4293 ipForwarding, ipDefaultTTL; RFC 4022
# tcpRtoAlgorithm, tcpRtoMin, tcpRtoMax, tcpMaxConn, tcpCurrEstab): not moved by a frame.
NOT_COUNTERS = frozenset(
    {
        "Ip.Forwarding",
        "Ip.DefaultTTL",
        "Tcp.RtoAlgorithm",
        "Tcp.RtoMin",
        "Tcp.RtoMax",
        "Tcp.MaxConn",
        "Tcp.CurrEstab",
    }
)
# include/uapi/linux/if_link.h struct rtnl_link_stats64, in order (rx_nohandler since 4.6,
# rx_otherhost_dropped since 6.0; older kernels send a shorter struct).
LINK_STATS = (
    "rx_packets",
    "tx_packets",
    "rx_bytes",
    "tx_bytes",
    "rx_errors",
    "tx_errors",
    "rx_dropped",
    "tx_dropped",
    "multicast",
    "collisions",
    "rx_length_errors",
    "rx_over_errors",
    "rx_crc_errors",
    "rx_frame_errors",
    "rx_fifo_errors",
    "rx_missed_errors",
    "tx_aborted_errors",
    "tx_carrier_errors",
    "tx_fifo_errors",
    "tx_heartbeat_errors",
    "tx_window_errors",
    "rx_compressed",
    "tx_compressed",
    "rx_nohandler",
    "rx_otherhost_dropped",
)
# Moved by every frame or by the replies: they say nothing about the frame's fate.
LINK_SKIP = frozenset({"rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "multicast"})
RTM_NEWLINK, RTM_GETLINK = 16, 18
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_DONE, NLMSG_ERROR = 3, 2
IFLA_IFNAME, IFLA_STATS64 = 3, 23


def mib_counters(snmp: str, netstat: str, snmp6: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for text in (snmp, netstat):
        for group, values in parse_mib(text).items():
            for name, value in values.items():
                key = name if group in BARE_GROUPS else f"{group}.{name}"
                if f"{group}.{name}" not in NOT_COUNTERS:
                    out[key] = value
    # snmp6 is "Name value" pairs, one a line (net/ipv6/proc.c snmp6_seq_show_item).
    words = snmp6.split()
    if len(words) % 2 == 0 and all(v.isdigit() for v in words[1::2]):
        out.update(zip(words[0::2], map(int, words[1::2]), strict=True))
    else:
        for line in snmp6.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                out[parts[0]] = int(parts[1])
    return out


def parse_links(data: bytes) -> tuple[dict[str, dict[str, int]], bool]:
    """RTM_NEWLINK messages -> {ifname: stats}; second value True when NLMSG_DONE seen."""
    out: dict[str, dict[str, int]] = {}
    off = 0
    while off + 16 <= len(data):
        length, mtype = struct.unpack_from("=IH", data, off)
        if length < 16 or off + length > len(data):
            break
        if mtype == NLMSG_DONE:
            return out, True
        if mtype == NLMSG_ERROR:
            code = struct.unpack_from("=i", data, off + 16)[0]
            raise OSError(-code, os.strerror(-code))
        if mtype == RTM_NEWLINK:
            name, stats = _link(data[off + 32 : off + length])
            if name:
                out[name] = stats
        off += (length + 3) & ~3
    return out, False


def _link(attrs: bytes) -> tuple[str, dict[str, int]]:
    name, stats = "", {}
    off = 0
    while off + 4 <= len(attrs):
        alen, atype = struct.unpack_from("=HH", attrs, off)
        if alen < 4:
            break
        body = attrs[off + 4 : off + alen]
        if atype == IFLA_IFNAME:
            name = body.split(b"\0", 1)[0].decode()
        elif atype == IFLA_STATS64:
            n = min(len(body) // 8, len(LINK_STATS))
            stats = dict(zip(LINK_STATS, struct.unpack_from(f"={n}Q", body), strict=False))
        off += (alen + 3) & ~3
    return name, stats


@dataclass
class CounterReader:
    """Opened inside the receiving namespace (the caller is there when it calls open)."""

    labels: dict[str, str]  # device name -> prefix ("" for the veth)
    _fds: dict[str, int] | None = None
    _nl: socket.socket | None = None
    _softnet: int | None = None

    def open(self) -> None:
        self._fds = {}
        for name in ("snmp", "netstat", "snmp6"):
            try:
                self._fds[name] = os.open(f"/proc/thread-self/net/{name}", os.O_RDONLY)
            except FileNotFoundError:
                continue  # snmp6 without IPv6
        self._nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._softnet = os.open("/proc/net/softnet_stat", os.O_RDONLY)

    def close(self) -> None:
        for fd in (self._fds or {}).values():
            os.close(fd)
        self._fds = None
        if self._softnet is not None:
            os.close(self._softnet)
            self._softnet = None
        if self._nl is not None:
            self._nl.close()
            self._nl = None

    def _text(self, fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode(errors="replace")

    def links(self) -> dict[str, dict[str, int]]:
        assert self._nl is not None, "CounterReader.open() first"
        req = struct.pack("=IHHII", 32, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        self._nl.send(req + struct.pack("=BBHiII", socket.AF_UNSPEC, 0, 0, 0, 0, 0))
        out: dict[str, dict[str, int]] = {}
        while True:
            part, done = parse_links(self._nl.recv(65536))
            out.update(part)
            if done:
                return out

    def read(self) -> dict[str, int]:
        assert self._fds is not None, "CounterReader.open() first"
        t = {k: self._text(fd) for k, fd in self._fds.items()}
        out = mib_counters(t.get("snmp", ""), t.get("netstat", ""), t.get("snmp6", ""))
        for dev, stats in self.links().items():
            prefix = self.labels.get(dev)
            if prefix is None:
                continue
            for k, v in stats.items():
                if k not in LINK_SKIP:
                    out[f"{prefix}{k}"] = v
        return out

    def backlog(self, cpu: int) -> int:
        """Packets still queued on `cpu`'s backlog (softnet_stat column 12, 5.10+; 0 when
        the kernel does not print it)."""
        assert self._softnet is not None, "CounterReader.open() first"
        for row in parse_softnet(self._text(self._softnet)):
            if row.cpu == cpu:
                return row.backlog or 0
        return 0


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Counters that moved, in the order the kernel prints them."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
