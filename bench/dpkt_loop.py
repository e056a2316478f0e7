"""The peer a user would write by hand: a dpkt loop doing the same job as `scan` at its
simplest (Ethernet -> IP -> fragment check -> tunnel peel). Prints packets seen."""

from __future__ import annotations

import sys

import dpkt


def main(path: str) -> None:
    n = frags = tunnelled = 0
    with open(path, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            n += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            for _depth in range(3):
                if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                    break
                if isinstance(ip, dpkt.ip.IP) and ip.off & (dpkt.ip.IP_MF | dpkt.ip.IP_OFFMASK):
                    frags += 1
                    break
                inner = ip.data
                if isinstance(inner, dpkt.gre.GRE):
                    tunnelled += 1
                    ip = inner.data
                    if isinstance(ip, dpkt.ethernet.Ethernet):
                        ip = ip.data
                elif isinstance(inner, dpkt.ip.IP | dpkt.ip6.IP6):
                    tunnelled += 1
                    ip = inner
                elif isinstance(inner, dpkt.udp.UDP) and inner.dport == 4789:
                    tunnelled += 1
                    ip = dpkt.ethernet.Ethernet(bytes(inner.data)[8:]).data
                else:
                    break
    print(n, frags, tunnelled)


if __name__ == "__main__":
    main(sys.argv[1])
