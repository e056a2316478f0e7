"""A packet builder: every layer the decoder reads, with correct lengths and checksums by
default and every field overridable, so malformed packets can be built on purpose.

Builders are plain functions returning bytes; an outer layer takes its payload as bytes.
tests/test_craft.py compares each one with scapy's bytes for the same packet.
"""

from netsleuth.craft.checksum import inet_checksum
from netsleuth.craft.l2 import dot1q, ether, llc, mac, mpls, pad, snap, stp_bpdu
from netsleuth.craft.l3 import (
    fragment_ipv4,
    ip4,
    ipv4,
    ipv6,
    ipv6_ext,
    ipv6_frag,
)
from netsleuth.craft.l4 import icmp, icmpv6, tcp, udp
from netsleuth.craft.tunnel import erspan2, erspan3, geneve, gre, gre_pptp, ppp, vxlan

__all__ = [
    "dot1q",
    "erspan2",
    "erspan3",
    "ether",
    "fragment_ipv4",
    "geneve",
    "gre",
    "gre_pptp",
    "icmp",
    "icmpv6",
    "inet_checksum",
    "ip4",
    "ipv4",
    "ipv6",
    "ipv6_ext",
    "ipv6_frag",
    "llc",
    "mac",
    "mpls",
    "pad",
    "ppp",
    "snap",
    "stp_bpdu",
    "tcp",
    "udp",
    "vxlan",
]
