"""Vectorized decoding of RecordBatches into PacketTables.

The protocol modules register their bindings when imported; this literal list is the whole
set, so a protocol cannot drop out unnoticed (tests/test_registry.py pins the table).
"""

from __future__ import annotations

from netsleuth.capture.batch import RecordBatch
from netsleuth.decode import (  # noqa: F401 - imported for their registrations
    arcnet,
    arista,
    arp,
    atm,
    chdlc,
    cmd,
    dsa,
    erfmeta,
    erspan,
    etag,
    etherip,
    ethernet,
    framerelay,
    geneve,
    gre,
    gtpu,
    icmp,
    ieee80211,
    ipnet,
    ipoib,
    ipv4,
    ipv6,
    l2tp,
    llc,
    macsec,
    mpls,
    nflog,
    nsh,
    null,
    pbb,
    pim,
    pktap,
    ppi,
    ppp,
    pppoe,
    prism,
    radiotap,
    rawip,
    sll,
    tcp,
    teredo,
    udp,
    vlan,
    vntag,
    vxlan,
    vxlangpe,
    wccp,
)
from netsleuth.decode.engine import DEFAULT_TUNNEL_DEPTH, decode_batch
from netsleuth.decode.registry import REGISTRY
from netsleuth.decode.table import ANOMALY_IDS, L2, Anomaly, PacketTable, Tunnel

__all__ = [
    "ANOMALY_IDS",
    "DEFAULT_TUNNEL_DEPTH",
    "L2",
    "REGISTRY",
    "Anomaly",
    "PacketTable",
    "Tunnel",
    "decode",
]


def decode(
    batch: RecordBatch, *, tunnel_depth: int = DEFAULT_TUNNEL_DEPTH, prefix: bool = True
) -> PacketTable:
    return decode_batch(batch, REGISTRY, tunnel_depth=tunnel_depth, prefix=prefix)
