"""The whole dispatch table, pinned: a protocol that falls out (or moves) fails here."""

from __future__ import annotations

import pytest

from netsleuth.decode import REGISTRY
from netsleuth.decode.registry import Registry
from netsleuth.decode.table import NS

EXPECTED = [
    ("ETHERTYPE", 0x0800, "ipv4", "none"),
    ("ETHERTYPE", 0x0806, "arp", "none"),
    ("ETHERTYPE", 0x8035, "rarp", "none"),
    ("ETHERTYPE", 0x8100, "802.1q", "none"),
    ("ETHERTYPE", 0x86DD, "ipv6", "none"),
    ("ETHERTYPE", 0x8847, "mpls", "none"),
    ("ETHERTYPE", 0x8848, "mpls-multicast", "none"),
    ("ETHERTYPE", 0x8863, "pppoe-discovery", "none"),
    ("ETHERTYPE", 0x8864, "pppoe-session", "none"),
    ("ETHERTYPE", 0x88A8, "802.1ad", "none"),
    ("ETHERTYPE", 0x88E5, "macsec", "none"),
    ("ETHERTYPE", 0x88E7, "802.1ah-pbb", "none"),
    ("ETHERTYPE", 0x8909, "cisco-metadata", "none"),
    ("ETHERTYPE", 0x8926, "vn-tag", "none"),
    ("ETHERTYPE", 0x893F, "e-tag", "none"),
    ("ETHERTYPE", 0x894F, "nsh", "none"),
    ("ETHERTYPE", 0x9100, "802.1q-legacy-qinq", "none"),
    ("ETHERTYPE", 0xD28B, "arista-timestamp", "none"),
    ("FRAME", 1, "ethernet", "none"),
    ("FRAME", 2, "llc", "none"),
    ("FRAME", 3, "rawip", "none"),
    ("FRAME", 4, "pim-register", "pim"),
    ("FRAME", 5, "pim-null-register", "pim"),
    ("IPPROTO", 1, "icmp", "none"),
    ("IPPROTO", 4, "ipip", "ipip"),
    ("IPPROTO", 6, "tcp", "none"),
    ("IPPROTO", 17, "udp", "none"),
    ("IPPROTO", 41, "ipv6-in-ip", "ip6"),
    ("IPPROTO", 47, "gre", "gre"),
    ("IPPROTO", 58, "icmpv6", "none"),
    ("IPPROTO", 97, "etherip", "etherip"),
    ("IPPROTO", 103, "pim", "none"),
    ("IPPROTO", 115, "l2tp-ip", "l2tp"),
    ("IPPROTO", 137, "mpls-in-ip", "mpls_ip"),
    ("IPPROTO", 143, "ethernet-in-ip", "etherip"),
    ("LINKTYPE", 0, "null", "none"),
    ("LINKTYPE", 1, "ethernet", "none"),
    ("LINKTYPE", 9, "ppp", "none"),
    ("LINKTYPE", 12, "raw-dlt12", "none"),
    ("LINKTYPE", 14, "raw-dlt14", "none"),
    ("LINKTYPE", 50, "ppp-hdlc", "none"),
    ("LINKTYPE", 101, "raw", "none"),
    ("LINKTYPE", 104, "cisco-hdlc", "none"),
    ("LINKTYPE", 107, "frame-relay", "none"),
    ("LINKTYPE", 108, "loop", "none"),
    ("LINKTYPE", 113, "linux-sll", "none"),
    ("LINKTYPE", 226, "ipnet", "none"),
    ("LINKTYPE", 100, "atm-rfc1483", "none"),
    ("LINKTYPE", 105, "ieee80211", "none"),
    ("LINKTYPE", 106, "atm-clip", "none"),
    ("LINKTYPE", 119, "prism", "none"),
    ("LINKTYPE", 127, "radiotap", "none"),
    ("LINKTYPE", 129, "arcnet-linux", "none"),
    ("LINKTYPE", 149, "pktap-user2", "none"),
    ("LINKTYPE", 163, "avs", "none"),
    ("LINKTYPE", 192, "ppi", "none"),
    ("LINKTYPE", 197, "erf", "none"),
    ("LINKTYPE", 258, "pktap", "none"),
    ("LINKTYPE", 242, "ipoib", "none"),
    ("LINKTYPE", 281, "dsa-brcm", "none"),
    ("LINKTYPE", 282, "dsa-brcm-prepend", "none"),
    ("LINKTYPE", 284, "dsa-marvell", "none"),
    ("LINKTYPE", 285, "dsa-marvell-edsa", "none"),
    ("LINKTYPE", 228, "ipv4", "none"),
    ("LINKTYPE", 229, "ipv6", "none"),
    ("LINKTYPE", 239, "nflog", "none"),
    ("LINKTYPE", 276, "linux-sll2", "none"),
    ("PPP", 0x0021, "ipv4", "none"),
    ("PPP", 0x0057, "ipv6", "none"),
    ("PPP", 0x0281, "mpls", "none"),
    ("TUNNEL_PROTO", 0x0800, "ipv4", "none"),
    ("TUNNEL_PROTO", 0x22EB, "erspan-iii", "none"),
    ("TUNNEL_PROTO", 0x6558, "ethernet-teb", "none"),
    ("TUNNEL_PROTO", 0x86DD, "ipv6", "none"),
    ("TUNNEL_PROTO", 0x880B, "ppp", "none"),
    ("TUNNEL_PROTO", 0x883E, "wccp", "none"),
    ("TUNNEL_PROTO", 0x8847, "mpls", "none"),
    ("TUNNEL_PROTO", 0x8848, "mpls-multicast", "none"),
    ("TUNNEL_PROTO", 0x88BE, "erspan-i-ii", "none"),
    ("TUNNEL_PROTO", 0x8909, "cisco-metadata", "none"),
    ("UDPPORT", 1701, "l2tp", "l2tp"),
    ("UDPPORT", 2152, "gtp-u", "gtpu"),
    ("UDPPORT", 3544, "teredo", "teredo"),
    ("UDPPORT", 4754, "gre-in-udp", "gre_udp"),
    ("UDPPORT", 4789, "vxlan", "vxlan"),
    ("UDPPORT", 4790, "vxlan-gpe", "vxlan_gpe"),
    ("UDPPORT", 6081, "geneve", "geneve"),
    ("UDPPORT", 6635, "mpls-in-udp", "mpls_udp"),
    ("UDPPORT", 8472, "vxlan-linux", "vxlan"),
]


def test_dispatch_table_snapshot() -> None:
    assert REGISTRY.snapshot() == sorted(EXPECTED)


def test_double_binding_is_refused() -> None:
    reg = Registry()
    reg.register(NS.IPPROTO, 6, "tcp", lambda t, i: None)
    with pytest.raises(ValueError, match="already bound to tcp"):
        reg.register(NS.IPPROTO, 6, "other", lambda t, i: None)
    with pytest.raises(ValueError, match="outside namespace"):
        reg.register(NS.IPPROTO, 256, "big", lambda t, i: None)
