"""drops.location: one finding per (location, reason, protocol) group, explained.

Reason meanings follow the kernel's own comments in include/net/dropreason-core.h (one per
SKB_DROP_REASON_*). Before 5.17 the tracepoint has no reason, so the function that freed
the packet stands in for it (LOCATION_HINTS), and the text says it is inferred."""

from __future__ import annotations

from dataclasses import dataclass, replace

from netsleuth.drops.symbols import base_name
from netsleuth.drops.tally import DropGroup
from netsleuth.ethertypes import protocol_name
from netsleuth.findings import Finding, Severity
from netsleuth.findings.catalogue import catalogue_finding

ID = "drops.location"
_I, _W = Severity.INFO, Severity.WARNING
# Unexplained groups are a warning once they are this many in a run; below, info.
UNEXPLAINED_WARN = 100
LLC = frozenset({0x0001, 0x0004, 0x0005})  # ETH_P_802_3, ETH_P_802_2, ETH_P_SNAP


@dataclass(frozen=True, slots=True)
class Why:
    severity: Severity
    text: str
    refs: tuple[str, ...] = ()


_NOHANDLER = (
    "No protocol handler is registered for this protocol, so "
    "__netif_receive_skb_core frees the frame and counts it in the device's rx_dropped "
    "(rx_nohandler on inactive bond/team slaves). Harmless for protocols this host does not speak "
    "(LLDP, 802.1X, vendor protocols); `ip -s -s link` shows the counter."
)
_STP = (
    "802.3/LLC frames, almost always spanning-tree BPDUs from the switch (one every 2 s per "
    "port), and this host is not a bridge: nothing consumes them (incident 2; rx_dropped "
    "counts them unless the kernel's LLC/STP code takes and frees them, as here when the "
    "location is stp_pdu_rcv). Harmless. To stop them: bpdufilter on the switch port facing "
    "a host, or ignore rx_dropped growth of ~0.5/s per link."
)

REASONS: dict[str, Why] = {
    "NO_SOCKET": Why(
        _I,
        "Arrived for a port nothing listens on (UDP: an ICMP port unreachable is sent; TCP: "
        "a RST). Scans, replies after the socket closed, a service that is down. "
        "`ss -lnup` / `ss -lntp` shows what listens.",
    ),
    "UNHANDLED_PROTO": Why(_I, _NOHANDLER, ("linux-nohandler-rx-dropped",)),
    "CPU_BACKLOG": Why(
        _W,
        "The per-CPU input backlog was full (net.core.netdev_max_backlog): packets steered "
        "by RPS or queued by netif_rx (veth, tunnels) arrive faster than that CPU drains "
        "them. Raise netdev_max_backlog, spread load (RPS/RSS), and check `netsleuth "
        "doctor` (host.softnet_backlog_drop, host.softirq_hotspot).",
    ),
    "SOCKET_RCVBUFF": Why(
        _W,
        "The socket's receive buffer was full: the application does not read as fast as "
        "packets arrive. Read faster or raise SO_RCVBUF (net.core.rmem_max); UDP counts "
        "these as RcvbufErrors in /proc/net/snmp.",
    ),
    "SOCKET_BACKLOG": Why(
        _W,
        "The socket's backlog (packets queued while the socket was owned by a user "
        "thread) exceeded its limit: the receiving application holds the socket lock too "
        "long or is overwhelmed.",
    ),
    "PROTO_MEM": Why(
        _W,
        "The protocol's memory limit was reached (net.ipv4.tcp_mem / udp_mem): the whole "
        "host is short of socket buffer memory.",
    ),
    "NETFILTER_DROP": Why(
        _I,
        "A firewall rule (nftables/iptables) dropped it. Expected when the rule is; the "
        "rule counters (`nft list ruleset`, `iptables -L -v -n`) show which.",
    ),
    "OTHERHOST": Why(
        _I,
        "Addressed to another host's MAC: promiscuous mode (a capture), a switch flooding "
        "unknown unicast, or macvlan/bridge neighbours.",
    ),
    "IP_CSUM": Why(
        _W,
        "The IPv4 header checksum is wrong: corruption on the path or a broken offload. "
        "Capture it and run `netsleuth scan` (ipv4.bad_checksum names the packets).",
    ),
    "IP_INHDR": Why(
        _W,
        "The IPv4 header is invalid (version, header length, total length): malformed or "
        "truncated packets; `netsleuth scan` on a capture names them.",
    ),
    "IP_RPFILTER": Why(
        _W,
        "Reverse-path filter (net.ipv4.conf.*.rp_filter): the source is not reachable back "
        "through the interface it came in on. Asymmetric routing; loosen rp_filter to 2 on "
        "that interface if the path is legitimate.",
    ),
    "IP_NOPROTO": Why(_I, "No handler for this IP protocol number (protocol module absent)."),
    "IP_INNOROUTES": Why(_W, "No route for the destination (InNoRoutes)."),
    "IP_INADDRERRORS": Why(_W, "Invalid destination address (InAddrErrors)."),
    "TCP_CSUM": Why(_W, "TCP checksum error: corruption or a broken offload (InCsumErrors)."),
    "UDP_CSUM": Why(_W, "UDP checksum error: corruption or a broken offload (InCsumErrors)."),
    "ICMP_CSUM": Why(_W, "ICMP checksum error."),
    "PKT_TOO_SMALL": Why(_W, "Shorter than its headers claim: truncated or malformed."),
    "SOCKET_FILTER": Why(
        _I,
        "A socket's BPF filter (SO_ATTACH_FILTER: tcpdump, DHCP clients, packet sockets) "
        "did not want it. Normal.",
    ),
    "UNICAST_IN_L2_MULTICAST": Why(_I, "An IP unicast packet inside an L2 multicast frame."),
    "XFRM_POLICY": Why(_W, "An IPsec (xfrm) policy check failed."),
    "QDISC_DROP": Why(
        _W, "The egress queueing discipline dropped it (queue full): `tc -s qdisc` shows where."
    ),
    "TC_INGRESS": Why(_I, "A tc ingress filter dropped it."),
    "TC_EGRESS": Why(_I, "A tc egress filter dropped it."),
    "XDP": Why(_I, "An XDP program returned XDP_DROP."),
    "FULL_RING": Why(_W, "A device ring was full (tun/tap, veth with XDP)."),
    "NOMEM": Why(_W, "Memory allocation failed while handling the packet."),
    "TCP_LISTEN_OVERFLOW": Why(
        _W,
        "The listener's accept queue was full (ListenOverflows): the application accepts "
        "too slowly or its backlog is too small (listen() backlog, net.core.somaxconn).",
    ),
    "FRAG_REASM_TIMEOUT": Why(
        _W,
        "Fragments of a datagram never all arrived within net.ipv4.ipfrag_time (30 s): "
        "a lost fragment, or a path dropping some (ReasmTimeout). A capture through "
        "`netsleuth scan` shows which trains are incomplete.",
    ),
    "DUP_FRAG": Why(
        _W,
        "A duplicate or overlapping fragment: Linux discards the whole datagram on overlap "
        "(RFC 5722 for IPv6; IPv4 since 4.19).",
        ("linux-overlap-discard",),
    ),
    "FRAG_TOO_FAR": Why(
        _W, "A fragment too far out of order (net.ipv4.ipfrag_max_dist): reassembly gave up."
    ),
    "NEIGH_FAILED": Why(_W, "Neighbour resolution (ARP/ND) failed for the next hop."),
    "NEIGH_QUEUEFULL": Why(_W, "Too many packets queued waiting for ARP/ND to resolve."),
    "IP_OUTNOROUTES": Why(_W, "No route to send it (OutNoRoutes)."),
    "TCP_OLD_DATA": Why(
        _I, "TCP data already received (a retransmission): normal in small numbers."
    ),
    "TCP_INVALID_SEQUENCE": Why(_I, "TCP segment outside the window: normal in small numbers."),
    "TCP_RESET": Why(_I, "A TCP RST ended the connection."),
    "TCP_CLOSE": Why(_I, "A TCP segment for a closed connection."),
}

# Kernels before 5.17 record no reason: the function that called kfree_skb() tells most.
LOCATION_HINTS: dict[str, str] = {
    "__netif_receive_skb_core": "UNHANDLED_PROTO",
    "enqueue_to_backlog": "CPU_BACKLOG",
    "nf_hook_slow": "NETFILTER_DROP",
    "ip_rcv_finish_core": "IP_RPFILTER",
    "ip_expire": "FRAG_REASM_TIMEOUT",
    "sock_queue_rcv_skb": "SOCKET_RCVBUFF",
    "__sock_queue_rcv_skb": "SOCKET_RCVBUFF",
    "__udp_enqueue_schedule_skb": "SOCKET_RCVBUFF",
    "tcp_v4_syn_recv_sock": "TCP_LISTEN_OVERFLOW",
}


def explain(g: DropGroup) -> tuple[Why | None, bool]:
    """The explanation for a group and whether it was inferred from the location."""
    func = base_name(g.location.function) if g.location else ""
    if g.protocol in LLC and (
        func in {"stp_pdu_rcv", "llc_rcv", "__netif_receive_skb_core"}
        or g.reason == "UNHANDLED_PROTO"
    ):
        return Why(_I, _STP, ("linux-nohandler-rx-dropped",)), False
    if g.reason is not None and g.reason in REASONS:
        return REASONS[g.reason], False
    hint = LOCATION_HINTS.get(func)
    if hint and (g.reason is None or g.reason == "NOT_SPECIFIED"):
        return REASONS[hint], g.reason is None
    return None, False


def judge(rows: list[DropGroup]) -> list[Finding]:
    out = []
    for g in rows:
        why, inferred = explain(g)
        reason = g.reason if g.reason is not None else "no reason recorded"
        summary = (
            f"{g.count:,} dropped at {g.where} ({reason}), protocol 0x{g.protocol:04x} "
            f"({protocol_name(g.protocol)}), {g.per_second:,.1f}/s"
        )
        base = catalogue_finding(ID, g.count, summary=summary, evidence=g.to_json())
        if why is None:
            sev = _W if g.count >= UNEXPLAINED_WARN else _I
            out.append(replace(base, severity=sev))
            continue
        text = why.text
        if inferred:
            text = f"(Inferred from the location: this kernel records no drop reason.) {text}"
        out.append(replace(base, severity=why.severity, explanation=text, refs=why.refs))
    return out
