"""Every finding id any command can emit: its default severity, a one-line summary, the
explanation a report prints, the docs table's meaning and prior art, and refs into the
known-issues catalogue.

The one source of truth for the public vocabulary of finding ids: scan's checks and read
issues, steer, listen, doctor, watch, record and the exporter (host.*), drops and lab replay
(drops.location), profile and doctor --profile, scan --live (capture.kernel_drops).
Findings are built through catalogue_finding(), which refuses an id that is not here;
tests/test_findings_catalogue.py holds every id literal in the source to this table, and
docs/findings.md is generated from it (`make docs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netsleuth.findings.record import Finding, Severity


@dataclass(frozen=True, slots=True)
class FindingInfo:
    severity: Severity
    summary: str
    explanation: str
    refs: tuple[str, ...] = ()  # ids in the known-issues catalogue (known_issues.json)
    # docs/findings.md's columns: what the id means in a few words, and what other tools
    # call it (the prior art a user may know it by).
    meaning: str = field(kw_only=True)
    prior_art: str = field(default="", kw_only=True)


_W, _I, _C = Severity.WARNING, Severity.INFO, Severity.CRITICAL

CATALOGUE: dict[str, FindingInfo] = {
    "capture.truncated_file": FindingInfo(
        _W,
        "the capture file ends in the middle of a record",
        "The writer was killed or the file was cut (disk full, copy interrupted). Every "
        "complete record before the cut was scanned; the partial one was not.",
        meaning=(
            "the file ends inside a record (or a gzip stream ends early); earlier records were "
            "scanned"
        ),
        prior_art=('Wireshark "The file appears to have been cut short in the middle of a packet"'),
    ),
    "capture.corrupt_record": FindingInfo(
        _W,
        "a record header in the capture file is corrupt",
        "A record's length field is impossible (beyond the 262144-byte libpcap limit or "
        "its own block): nothing after it can be located, so the rest of the file is not "
        "read; records before it were scanned. Other faults in a pcapng block (shorter "
        "than its fixed fields, a captured length past its end, an interface never "
        "described, a timestamp no clock gives) are skipped or mended as the summary "
        "says, and the reading goes on; the count is of the records concerned, the frame "
        "the first. Causes: file corruption, concatenated files, a buggy writer.",
        meaning="a record or block is impossible: the rest of the file unread, or the "
        "record skipped or mended",
        prior_art=(
            'libpcap "bogus savefile header"; Wireshark "pcapng: block length ... too large"'
        ),
    ),
    "capture.device_copies": FindingInfo(
        _I,
        "received fragments the cooked capture holds twice, from a second device",
        "A Linux cooked capture (tcpdump -i any, dumpcap -i any) takes a received packet on every "
        "device it passes: the NIC, then a bridge, bond or VLAN device above it, the copies "
        "microseconds apart (a tenth of a millisecond on a busy host). These fragments repeat, byte"
        " for byte, one at most 32 frames and 1 ms before them (from another device, where the "
        "capture names devices): the fragment audit and the tunnel reassembly took each once, as "
        "the one reassembler behind those devices does, and report nothing about the copies. Where "
        "the capture names no device (LINKTYPE_LINUX_SLL), a fragment that reached the host twice "
        "within 1 ms (a SPAN port fed twice, or a sender repeating it that fast) is counted here "
        "too. Capture on one device (tcpdump -i eth0) to see each packet once.",
        meaning="a received fragment a cooked (-i any) capture holds again from another device: "
        "left out of the fragment audit",
        prior_art="editcap -D (drops frames whose MD5 repeats within a window)",
    ),
    "capture.truncated_packet": FindingInfo(
        _I,
        "packets captured shorter than they were on the wire (snap length)",
        "The capture kept only the first bytes of these packets (tcpdump -s). Headers cut "
        "by the snap length are not reported as malformed; checks that need the payload "
        "see only what was kept. Capture with -s 0 to keep whole packets.",
        meaning="caplen < wire length (snap length); headers cut by it are not called malformed",
        prior_art="Wireshark `[Packet size limited during capture]`",
    ),
    "capture.unsupported_linktype": FindingInfo(
        _I,
        "packets of a link type netsleuth does not decode",
        "These records were counted but not decoded. The summary names each such link type "
        "(tcpdump.org link-layer header types) with its packet count; the evidence lists "
        "the link types netsleuth decodes.",
        meaning="a record whose link type is not decoded",
    ),
    "capture.capture_loss": FindingInfo(
        _W,
        "the capture says it lost packets while it was written",
        "The capture counted packets it could not store: an Endace DAG card's ERF loss "
        "counter (its buffer overflowed just before the record named here), or a pcapng "
        "file's interface statistics (isb_ifdrop, dropped by the interface for lack of "
        "resources, plus isb_osdrop, dropped by the operating system: totals since the "
        "capture started, the latest block of each interface counted). Those packets are "
        "in no file, so a clean result does not cover them; the evidence says how many "
        "(lost). Capture with a filter or a slice length, a bigger buffer, or to faster "
        "storage.",
        meaning=(
            "the capture's own loss counters (ERF lctr, pcapng isb_ifdrop + isb_osdrop) are above 0"
        ),
        prior_art='Wireshark ERF "loss counter" (erf.lctr); capinfos/dumpcap "dropped"',
    ),
    "capture.kernel_drops": FindingInfo(
        _W,
        "the kernel dropped frames before netsleuth read them (live capture)",
        "The packet socket's ring was full when these frames arrived (PACKET_STATISTICS "
        "tp_drops; tp_freeze_q_cnt counts the times the ring was frozen full): they were "
        "never scanned, so a clean result does not cover them. Use --workers, a bigger "
        "--ring, or a --filter that keeps only what matters.",
        meaning=(
            "`scan --live`: the packet socket's ring overflowed (PACKET_STATISTICS tp_drops > 0); "
            "those frames were not scanned"
        ),
        prior_art=('tcpdump "N packets dropped by kernel"'),
    ),
    "l2.truncated": FindingInfo(
        _W,
        "frame too short for its link-layer header",
        "The frame ends inside its link-layer header (Ethernet, VLAN, SLL, loopback, "
        "802.11, radiotap, PPI...) although it was captured whole. A NIC or switch would "
        "discard it as a runt.",
        meaning="frame ends inside its link-layer header",
        prior_art="Zeek `truncated_header`; Suricata `decoder.ethernet.pkt_too_small`",
    ),
    "l2.bad_length": FindingInfo(
        _W,
        "link-layer length field inconsistent with the frame",
        "An IEEE 802.3 type/length field is a length (<= 1500) that runs past the end of "
        "the frame, or lies in the undefined range 1501-1535 (IEEE 802.3 clause 3.2.6); or "
        "an 802.11 A-MSDU subframe's length runs past the frame (IEEE 802.11-2020 "
        "9.3.2.2.2).",
        meaning="802.3 length field beyond the frame or in 1501-1535; A-MSDU subframe length",
        prior_art=('Wireshark "Length field value goes past the end of the payload"'),
    ),
    "l2.bad_pseudo_header": FindingInfo(
        _W,
        "capture pseudo-header (radiotap, PPI) inconsistent with itself or the frame",
        "The metadata the capturing host's driver or tool wrote before the frame is not a "
        "valid radiotap (radiotap.org) or PPI (CACE Per-Packet Information) header: a "
        "version other than 0, a length shorter than the fixed header or past the frame, "
        "present words, Flags or PPI fields past that length, or an FCS announced with no "
        "room for it. The frame "
        "behind it is not decoded. The capture tool or the file is at fault, not the "
        "network.",
        meaning="radiotap or PPI version, length, fields or FCS flag impossible",
        prior_art='Wireshark "Malformed Packet" in radiotap or PPI',
    ),
    "l2.ieee8023_llc": FindingInfo(
        _W,
        "IEEE 802.3 frames with an LLC header (length field, not EtherType)",
        "A host that is not a bridge has no use for 802.2 LLC frames: Linux drops each one "
        "in __netif_receive_skb_core and counts it in rx_dropped (rx_nohandler only on "
        "inactive bond/team slaves), so rx_dropped rises with nothing wrong; kernels with "
        "the LLC/STP code built in drop them in stp_pdu_rcv without counting. Spanning "
        "tree BPDUs from the switch port are the usual source (incident 2): harmless to "
        "the host; stop them at the switch (BPDU filter / no spanning tree on an edge "
        "port) or expect the counter to rise. Confirm live with `netsleuth drops`.",
        ("linux-nohandler-rx-dropped",),
        meaning=(
            "802.3 length-field frames with LLC (STP BPDUs named by version, SNAP, NetBIOS...): a "
            "non-bridge Linux host drops them into `rx_dropped` / `rx_nohandler` (incident 2)"
        ),
        prior_art=(
            'Wireshark shows them as "LLC"/"STP" without a warning; tcpdump `-e` prints "802.3"'
        ),
    ),
    "l2.runt": FindingInfo(
        _I,
        "Ethernet frames shorter than 60 bytes",
        "Below the 802.3 minimum (64 bytes with FCS). Normal in a capture taken on the "
        "sending host, where the NIC pads later (frames the capture marks as sent are not "
        "counted), and on virtual links (veth, bridges, tap, VXLAN's inner frames), which "
        "carry frames unpadded to either end; on a physical wire a receiver drops runts.",
        meaning=(
            "Ethernet frame under 60 bytes, not marked as sent by the capturing host: normal "
            "on the sending host (the NIC pads) and on virtual links (veth, bridges); a drop "
            "on a physical wire"
        ),
        prior_art=(
            'Wireshark expert "Ethernet frame shorter than 60 bytes"; Suricata '
            "`decoder.ethernet.pkt_too_small`"
        ),
    ),
    "l2.padding_nonzero": FindingInfo(
        _I,
        "non-zero Ethernet padding after the IP packet",
        "Padding up to the 60-byte minimum should be zeros. Non-zero padding leaks the "
        "sender's memory (Etherleak, CVE-2003-0001) or betrays a device that pads with "
        "garbage; it is harmless to receivers, which ignore it.",
        meaning="padding after the IP packet in a 60-byte frame is not zeros (also inside tunnels)",
        prior_art="Etherleak CVE-2003-0001; Wireshark `eth.padding_bad`",
    ),
    "l2.llc_truncated": FindingInfo(
        _W,
        "802.3 frame too short for its LLC/SNAP/BPDU header",
        "The LLC header (or the SNAP or spanning-tree header behind it) is cut short.",
        meaning="802.3 frame too short for LLC/SNAP/BPDU",
    ),
    "l2.unknown_ethertype": FindingInfo(
        _I,
        "frames with an EtherType netsleuth does not decode",
        "Frames whose protocol is not decoded (LLDP, 802.1X, vendor protocols...). A Linux "
        "host with no handler for a protocol drops such frames and counts them in "
        "rx_dropped (rx_nohandler only on inactive bond/team slaves), as in incident 2: "
        "check that the senders are expected.",
        meaning=(
            "outermost EtherType not decoded; a Linux host without a handler drops these "
            "(`rx_dropped` / `rx_nohandler`); the summary names the 8 most seen, evidence "
            "lists 64 (`ethertypes`) and counts the rest (`other_ethertypes`)"
        ),
        prior_art="Zeek `unknown_protocol`",
    ),
    "vlan.too_deep": FindingInfo(
        _W,
        "more than 8 stacked VLAN tags",
        "Real networks stack two tags, rarely three. Long tag stacks are crafted to evade "
        "filters or exhaust parsers.",
        meaning="more than 8 VLAN tags",
        prior_art="Suricata `decoder.vlan.too_many_layers`",
    ),
    "mpls.truncated": FindingInfo(
        _W,
        "MPLS label stack cut short",
        "The frame ends inside the MPLS label stack.",
        meaning="label stack cut short",
    ),
    "mpls.too_deep": FindingInfo(
        _W,
        "MPLS label stack deeper than 16 labels",
        "No bottom-of-stack bit within 16 labels: corrupt or crafted.",
        meaning="no bottom of stack within 16 labels",
    ),
    "ip.bad_version": FindingInfo(
        _W,
        "IP header with the wrong version nibble",
        "The EtherType or link type announces IPv4/IPv6 but the version field disagrees.",
        meaning="the version nibble disagrees with the EtherType / link type",
        prior_art="Suricata `decoder.ipv4.wrong_ip_version`",
    ),
    "ipv4.bad_checksum": FindingInfo(
        _W,
        "IPv4 header checksum wrong",
        "The header checksum does not verify (RFC 791 section 3.1, RFC 1071). Every "
        "router and host drops these (Linux ip_rcv_core: IPSTATS_MIB_CSUMERRORS). On a "
        "capture taken on the sending host, TSO/GSO super-packets can carry headers the "
        "NIC completes later: check where the capture was taken before blaming the sender.",
        meaning="header checksum does not verify (every IPv4 header, outer and inner)",
        prior_art=(
            "Snort 116:2 is not a checksum rule; Suricata `ipv4.csum` keyword / `decoder.ipv4` "
            "checksum validation; Wireshark `ip.checksum.bad`; Zeek `bad_IP_checksum`"
        ),
    ),
    "ipv4.checksum_offload": FindingInfo(
        _I,
        "zero IPv4 header checksum, as the sending host's NIC leaves it (checksum offload)",
        "A capture taken on the sending host, before its NIC, holds a zero where the NIC "
        "writes the checksum after the capture point: IPv4 header checksum offload (Windows "
        "NDIS drivers by default, some others), and large send offload, where the total "
        "length is left 0 too and the NIC cuts the frame into segments. On the wire it is "
        "right; nothing to fix. Linux fills this checksum in software, so its captures never "
        "show this. If this capture was taken on the wire (a mirror port, a tap) or at the "
        "receiver, these headers really are zero and a receiver drops them: capture there to "
        "tell.",
        meaning=(
            "a zero IPv4 header checksum on a packet not known to be inbound (a pcapng capture "
            "marks it outbound, or says nothing of direction; not a capture a Linux host made: "
            "cooked, NFLOG, scan --live, pcapng whose shb_os names Linux), or "
            "whose total length is 0 too (large send offload): what the sending host's NIC "
            "fills after the capture point. Never in an ERF file, a capture of the wire"
        ),
        prior_art=('Wireshark "[may be caused by \\"IP checksum offload\\"]"'),
    ),
    "ipv4.truncated": FindingInfo(
        _W,
        "IPv4 header cut short",
        "The packet ends inside its IPv4 header although it was captured whole.",
        meaning="packet ends inside its IPv4 header",
        prior_art="Suricata `decoder.ipv4.pkt_too_small`",
    ),
    "ipv4.bad_header_length": FindingInfo(
        _W,
        "IPv4 header length below 20 bytes",
        "IHL < 5 (RFC 791 section 3.1). Every stack drops these (Linux ip_rcv_core: "
        "'iph->ihl < 5'); their presence means corruption or probing.",
        meaning="IHL < 5",
        prior_art="Suricata `decoder.ipv4.hlen_too_small`; Snort 116:1",
    ),
    "ipv4.bad_total_length": FindingInfo(
        _W,
        "IPv4 total length inconsistent with the header or frame",
        "Total length is smaller than the header or larger than the frame carries. Linux "
        "drops these in ip_rcv_core (IPSTATS_MIB_INTRUNCATEDPKTS / INHDRERRORS).",
        meaning="total length < header or > frame",
        prior_art=(
            "Suricata `decoder.ipv4.iplen_smaller_than_hlen`, `decoder.ipv4.trunc_pkt`; Snort 116:3"
        ),
    ),
    "ipv4.fragment.zero_length": FindingInfo(
        _C,
        "IPv4 fragment with no payload",
        "A fragment whose total length equals its header length: it carries nothing and "
        "no sender has a reason to emit it. DPDK before 18.11 chained it into the "
        "reassembled packet as a zero-length mbuf and an i40e NIC forwarding that chain hung "
        "its TX queue (incident 1); Suricata drops it silently; Snort names it 123:5 "
        "(zero-byte fragment). Drop fragments with payload length <= 0 at the edge and "
        "upgrade DPDK to 18.11+.",
        ("dpdk-ip-frag-zero-length", "i40e-tx-zero-length-buffer", "suricata-empty-fragment"),
        meaning=(
            "a fragment with a header and no payload (incident 1: hung an i40e NIC behind DPDK < "
            "18.11)"
        ),
        prior_art=(
            "Snort 123:5 / 116:459 (zero-byte fragment); Suricata drops it silently (ticket "
            "7067); Zeek, tcpdump, Wireshark say nothing"
        ),
    ),
    "ipv4.fragment.overlap": FindingInfo(
        _W,
        "IPv4 datagram with overlapping fragments",
        "Linux 4.19+ discards the whole datagram; older stacks and many middleboxes "
        "reassemble it with their own overlap policy, so an IDS and the host can see "
        "different bytes (Ptacek & Newsham 1998). Snort 123:8, Suricata "
        "defrag.ipv4.fragment_overlap, Zeek fragment_overlap.",
        ("linux-overlap-discard",),
        meaning="fragments of one datagram overlap",
        prior_art="Snort 123:8; Suricata `defrag.ipv4.fragment_overlap`; Zeek `fragment_overlap`",
    ),
    "ipv4.fragment.overlap_conflict": FindingInfo(
        _C,
        "overlapping IPv4 fragments carry different bytes",
        "The datagram's content depends on the receiver's reassembly policy: evidence "
        "lists which policies (first, last, bsd, bsd-right, linux-legacy, windows, "
        "solaris) produce which payload; modern Linux discards it. Almost always an "
        "evasion or a FragmentSmack-style attack. Zeek fragment_inconsistency.",
        ("linux-overlap-discard",),
        meaning=(
            "overlapping bytes differ: reassembly policies (first, last, bsd, bsd-right, "
            "linux-legacy, windows, solaris) disagree; evidence names the groups; modern Linux "
            "discards"
        ),
        prior_art="Zeek `fragment_inconsistency`; Novak target-based policies (Snort frag3)",
    ),
    "ipv4.fragment.duplicate": FindingInfo(
        _I,
        "identical IPv4 fragment received twice",
        "Exact copies (same offset, same bytes) are harmless to every policy; they point "
        "at duplication in the path (a SPAN fed twice, a looping link).",
        meaning="exact duplicate fragment (same offset, same bytes)",
        prior_art="Snort frag3 duplicate handling",
    ),
    "ipv4.fragment.tiny": FindingInfo(
        _W,
        "first IPv4 fragment too short to hold the transport header",
        "RFC 1858 section 3 (tiny fragment attack): filters that look at ports or TCP "
        "flags see nothing in the first fragment. Zeek excessively_small_fragment, Snort "
        "123:1 family. Drop first fragments shorter than the transport header.",
        meaning="first fragment shorter than the transport header (TCP 20, UDP/ICMP 8)",
        prior_art="RFC 1858 section 3; Zeek `excessively_small_fragment`; Snort 123:1 family",
    ),
    "ipv4.fragment.too_large": FindingInfo(
        _C,
        "IPv4 fragment ends beyond the 65535-byte maximum datagram",
        "Offset + length + header exceed 65535 (RFC 791): the ping-of-death shape "
        "(CVE-1999-0128); reassembly overflows naive buffers. Snort 123:3.",
        meaning="offset + length + header > 65535",
        prior_art=('Snort 123:3; "ping of death", CVE-1999-0128'),
    ),
    "ipv4.fragment.misaligned": FindingInfo(
        _W,
        "IPv4 fragment (not the last) with a payload not a multiple of 8",
        "RFC 791 counts fragment offsets in 8-byte units, so every fragment but the last "
        "carries a multiple of 8 bytes; the next fragment cannot start where this one "
        "ends. Suricata decoder.ipv4.frag_pkt_too_large family; Wireshark expert info.",
        meaning="a fragment with MF=1 whose payload is not a multiple of 8",
        prior_art="RFC 791 section 3.2; Wireshark expert info",
    ),
    "ipv4.fragment.inconsistent": FindingInfo(
        _W,
        "IPv4 fragments of one datagram disagree on its end",
        "Two last fragments (MF=0) with different ends, or data past the last fragment's "
        "end: reassemblers keep one or the other. Zeek fragment_inconsistency; FreeBSD "
        "rejects these since 2018.",
        meaning=(
            "fragments disagree on the datagram's end (two different last fragments, or data past "
            "it)"
        ),
        prior_art="Zeek `fragment_inconsistency`",
    ),
    "ipv4.fragment.incomplete": FindingInfo(
        _I,
        "IPv4 datagram never completed (missing fragments or timed out)",
        "Some fragments never arrived within the capture (or within 30 s, Linux's "
        "ipfrag_time). At the capture's edges this is expected; in the middle it means "
        "loss or filtering of later fragments: the host counts ReasmFails/ReasmTimeout.",
        meaning=(
            "the datagram never completed in the capture, or its fragments were more than 30 s "
            "apart"
        ),
        prior_art="host counters ReasmFails / ReasmTimeout",
    ),
    "ipv4.fragment.df": FindingInfo(
        _I,
        "IPv4 fragment with Don't Fragment set",
        "A packet marked DF was fragmented anyway (or the flags were forged). Incident 1's "
        "poison fragment came from a gateway that forcibly fragmented a DF TCP segment.",
        meaning="DF set on a fragment",
        prior_art="no common IDS name",
    ),
    "ipv4.fragment.too_many": FindingInfo(
        _W,
        "IPv4 datagram split into more than 4 fragments",
        "DPDK's reassembly accepted at most 4 fragments per datagram by default (8 since "
        "commit f8e0f8ce9030): such datagrams are dropped there. Small-MTU paths or "
        "deliberate splitting.",
        ("dpdk-ip-frag-max-frags",),
        meaning="more than 4 fragments (DPDK's historical default limit, 8 since f8e0f8ce9030)",
        prior_art="DPDK `RTE_LIBRTE_IP_FRAG_MAX_FRAG`",
    ),
    "ipv6.fragment.zero_length": FindingInfo(
        _C,
        "IPv6 fragment with no payload",
        "A fragment header with no data after it. The DPDK 18.11 fix checks IPv6 too; "
        "before it, the same zero-length mbuf chaining applies.",
        ("dpdk-ip-frag-zero-length",),
        meaning="IPv6 fragment with no data",
        prior_art="DPDK 7f0983ee331c covers IPv6 too",
    ),
    "ipv6.fragment.overlap": FindingInfo(
        _W,
        "IPv6 datagram with overlapping fragments",
        "RFC 5722 (and RFC 8200 section 4.5) requires discarding the whole datagram; a "
        "stack that reassembles it is non-conformant. Suricata "
        "defrag.ipv6.fragment_overlap.",
        ("linux-overlap-discard",),
        meaning="overlapping IPv6 fragments (RFC 5722: discard the datagram)",
        prior_art="Suricata `defrag.ipv6.fragment_overlap`",
    ),
    "ipv6.fragment.atomic": FindingInfo(
        _I,
        "IPv6 atomic fragment (offset 0, M=0)",
        "A fragment header on a whole packet (RFC 6946), once sent after an ICMPv6 Packet "
        "Too Big below 1280 (deprecated by RFC 8021). Processed in isolation, not "
        "reassembled; usable for fragmentation-based attacks on the flow.",
        meaning="offset 0 and M=0: an atomic fragment, processed alone (RFC 6946)",
        prior_art="Wireshark expert info",
    ),
    "ipv6.fragment.tiny": FindingInfo(
        _W,
        "first IPv6 fragment too short to hold the transport header",
        "RFC 7112: the first fragment must hold the whole header chain up to the transport "
        "header; stacks and firewalls drop those that do not.",
        meaning="first fragment too short for the transport header (RFC 7112)",
    ),
    "ipv6.fragment.incomplete": FindingInfo(
        _I,
        "IPv6 datagram never completed (missing fragments or timed out)",
        "Some fragments never arrived within the capture or within 60 s (RFC 8200 "
        "reassembly timeout).",
        meaning="IPv6 datagram never completed",
        prior_art="ReasmFails (Ip6)",
    ),
    "fragment.evicted": FindingInfo(
        _W,
        "fragments dropped from the audit's bounded reassembly table",
        "More datagrams were open at once than the audit holds (4096 datagrams, 64 MiB); "
        "the oldest were evicted, as a host's reassembler evicts under "
        "ipfrag_high_thresh. A fragment flood looks like this.",
        meaning=(
            "the audit's bounded table (4096 datagrams, 64 MiB) evicted open datagrams: a "
            "fragment flood"
        ),
        prior_art="Linux `ipfrag_high_thresh` eviction",
    ),
    "ipv6.truncated": FindingInfo(
        _W,
        "IPv6 header cut short",
        "The packet ends inside its 40-byte IPv6 header.",
        meaning="packet ends inside its IPv6 header",
        prior_art="Suricata `decoder.ipv6.pkt_too_small`",
    ),
    "ipv6.bad_payload_length": FindingInfo(
        _W,
        "IPv6 payload length larger than the frame",
        "The payload length runs past the end of the frame (RFC 8200 section 3).",
        meaning="payload length beyond the frame",
        prior_art="Suricata `decoder.ipv6.trunc_pkt`",
    ),
    "ipv6.ext_chain_too_long": FindingInfo(
        _W,
        "more than 8 IPv6 extension headers",
        "Long extension header chains are used to evade firewalls (RFC 7112, RFC 9098); "
        "many routers drop them.",
        meaning="more than 8 extension headers",
        prior_art="RFC 9098",
    ),
    "ipv6.ext_truncated": FindingInfo(
        _W,
        "IPv6 extension header cut short",
        "An extension header's length runs past the end of the packet.",
        meaning="extension header beyond the packet",
        prior_art="Suricata `decoder.ipv6.trunc_exthdr`",
    ),
    "tcp.truncated": FindingInfo(
        _W,
        "TCP header cut short",
        "The packet ends inside its TCP header.",
        meaning=(
            "packet ends inside its TCP header (not a tiny fragment: that is the fragment audit's)"
        ),
        prior_art="Suricata `decoder.tcp.pkt_too_small`",
    ),
    "tcp.bad_flags": FindingInfo(
        _W,
        "TCP segments with an impossible flag combination",
        "SYN+FIN, SYN+RST, FIN+RST, no flags, or FIN/PSH/URG without ACK: no conforming "
        "stack sends these (RFC 9293). They come from port scanners (nmap -sF/-sN/-sX) or "
        "fingerprinting, and some middleboxes mishandle them.",
        meaning="SYN+FIN, SYN+RST, FIN+RST, no flags, FIN/PSH/URG without ACK",
        prior_art=(
            "Snort 116:420-423 family; Zeek `TCP_christmas`, `TCP_null` weirds; Suricata "
            "`stream.pkt_invalid_flags`-style events"
        ),
    ),
    "tcp.bad_header_length": FindingInfo(
        _W,
        "TCP data offset below 5",
        "A TCP header shorter than 20 bytes (RFC 9293).",
        meaning="data offset < 5",
        prior_art="Suricata `decoder.tcp.hlen_too_small`",
    ),
    "udp.truncated": FindingInfo(
        _W,
        "UDP header cut short",
        "The packet ends inside its UDP header.",
        meaning="packet ends inside its UDP header",
        prior_art="Suricata `decoder.udp.pkt_too_small`",
    ),
    "udp.bad_length": FindingInfo(
        _W,
        "UDP length field inconsistent with the IP payload",
        "The UDP length is below 8 or runs past the IP payload (RFC 768). Linux counts "
        "these in UDP InErrors and drops them.",
        meaning="UDP length < 8 or beyond the IP payload",
        prior_art=('Suricata `decoder.udp.len_invalid`; Wireshark "Bad length value"'),
    ),
    "icmp.truncated": FindingInfo(
        _W,
        "ICMP header cut short",
        "The packet ends inside its ICMP header.",
        meaning="packet ends inside its ICMP header",
    ),
    "gre.v1_pptp": FindingInfo(
        _I,
        "PPTP traffic (GRE version 1 carrying PPP)",
        "Enhanced GRE (RFC 2637). Before Linux 4.10 the flow dissector did not look inside "
        "GRE version 1, so RPS hashed every PPTP packet between two endpoints alike and "
        "one CPU took them all (incident 3); NIC RSS sees only the outer addresses too. "
        "Check the receive spread with `netsleuth steer`.",
        ("linux-flow-dissector-gre-v1",),
        meaning=(
            "PPTP (GRE v1 + PPP) present: pre-4.10 RPS and outer-only RSS cannot spread it "
            "(incident 3)"
        ),
        prior_art="Suricata `decoder.gre.version1_*` events (malformed only)",
    ),
    "gre.bad_version": FindingInfo(
        _W,
        "GRE header with a version other than 0 or 1",
        "Only version 0 (RFC 2784) and version 1 (PPTP, RFC 2637) exist.",
        meaning="GRE version other than 0 or 1",
        prior_art="Suricata `decoder.gre.wrong_version`",
    ),
    "gre.routing": FindingInfo(
        _W,
        "GRE header with the routing bit (RFC 1701 source routing)",
        "RFC 2784 removed source routing; receivers following it discard these packets, "
        "and their SRE lists are not decoded.",
        meaning="RFC 1701 routing bit set (removed by RFC 2784)",
        prior_art="Suricata `decoder.gre.version0_recur`/`_flags`",
    ),
    "tunnel.truncated": FindingInfo(
        _W,
        "tunnel header cut short",
        "The packet ends inside a tunnel or shim header it clearly has: GRE (and the "
        "ERSPAN, WCCP or Cisco MetaData behind it), PPP, PIM Register, NSH, EtherIP, "
        "GTP-U or L2TP. (A UDP port is only a hint: a payload too short for the tunnel the "
        "port names is not taken for that tunnel and is not flagged.)",
        meaning=(
            "packet ends inside a tunnel header it clearly has (GRE and what rides it, PPP, PIM "
            "Register, NSH, EtherIP, GTP-U, L2TP); a UDP port is a hint, never flagged on its own"
        ),
        prior_art="Suricata `decoder.gre.pkt_too_small`, `decoder.vxlan.*`",
    ),
    "tunnel.outer_fragmented": FindingInfo(
        _I,
        "tunnelled packets fragmented outside the tunnel",
        "The outer IP packet carrying the tunnel was fragmented (the tunnel path's MTU is "
        "below the inner packet plus the encapsulation): the inner packet spans the "
        "fragments, which is not malformed; netsleuth audits it in the reassembled "
        "datagram (frames listed in evidence.reassembled). Every endpoint must reassemble "
        "before it can decapsulate, and receive steering sees only the outer addresses of "
        "the later fragments. Lower the inner MTU or raise the path's (RFC 4459).",
        meaning=(
            "outer IPv4 fragments that carried a tunnel: the inner packet spans them and is "
            "audited in the reassembled outer datagram (findings on its inner layer name the "
            "frame that completed it; evidence lists all)"
        ),
        prior_art="Wireshark reassembles the outer datagram before dissecting the tunnel",
    ),
    "tunnel.reassembly_bounded": FindingInfo(
        _I,
        "fragmented outer datagrams not reassembled (bound reached)",
        "More fragmented tunnel datagrams were open at once than the outer reassembly holds "
        "(1024 datagrams, 16 MiB): the oldest were dropped, so the inner packets of these "
        "frames were not audited. Their outer fragments were (see ipv4.fragment.*).",
        meaning=(
            "fragmented tunnel datagrams dropped from the bounded outer reassembly (1024 "
            "datagrams, 16 MiB): their inner packets were not audited"
        ),
    ),
    "tunnel.bad_version": FindingInfo(
        _W,
        "tunnel header with an unknown version",
        "A PPPoE, NSH, MACsec or EtherIP header whose version field no receiver accepts "
        "(RFC 2516, RFC 8300, IEEE 802.1AE, RFC 3378): such frames are dropped, not "
        "decapsulated.",
        meaning="PPPoE, NSH, MACsec or EtherIP version no receiver accepts",
    ),
    "tunnel.too_deep": FindingInfo(
        _I,
        "more nested tunnels than the decode depth",
        "Decoding stopped at the configured tunnel depth (--tunnel-depth, default 3).",
        meaning="more nested tunnels than `--tunnel-depth`",
        prior_art="Suricata `decoder.too_many_layers`",
    ),
    "decode.too_deep": FindingInfo(
        _W,
        "more headers than any real packet has",
        "Decoding stopped after 40 layers: a crafted chain of headers.",
        meaning="more than 40 headers: a crafted chain",
        prior_art="Suricata `decoder.too_many_layers`",
    ),
    "steer.rss_imbalance": FindingInfo(
        _W,
        "NIC receive queues loaded unevenly",
        "One RSS queue (and the CPU its interrupt goes to) takes far more than its share: "
        "that CPU's softirq saturates while the others idle (incident 3). Check the cause "
        "in steer.flow_key_collapse / steer.elephant_flow; fixes: an inner-aware NIC or "
        "hash fields (ethtool -N DEV rx-flow-hash), RPS to spread in software, more "
        "tunnel endpoints.",
        meaning="`steer`: one NIC queue takes >= 2x the mean (with >= 50 packets per queue)",
        prior_art="ethtool -S per-queue counters; node_exporter per-queue",
    ),
    "steer.rps_imbalance": FindingInfo(
        _W,
        "RPS spreads the packets unevenly over the CPUs",
        "The kernel's software steering sends most packets to few CPUs: their softnet "
        "backlog and NET_RX softirq take it all (/proc/net/softnet_stat received_rps "
        "skewed). See steer.flow_key_collapse for why; fixes: a kernel whose flow "
        "dissector parses the tunnel, or spreading at the NIC.",
        ("linux-flow-dissector-gre-v1",),
        meaning="`steer`: RPS sends >= 2x the mean to one CPU",
        prior_art="/proc/net/softnet_stat received_rps",
    ),
    "steer.flow_key_collapse": FindingInfo(
        _W,
        "many flows share few hash keys",
        "The hash sees a layer where thousands of flows look identical (tunnel endpoints), "
        "so however good the hash, they all land together. Outer-only NIC parsing of "
        "GRE/IPIP/VXLAN, or a kernel that does not dissect GRE version 1 (before 4.10), "
        "are the usual causes.",
        ("linux-flow-dissector-gre-v1",),
        meaning=(
            "`steer`: >= 10 real flows per distinct hash (>= 100 flows): a layer is not parsed "
            "(outer-only NIC, GRE v1 before 4.10)"
        ),
        prior_art="no tool predicts it",
    ),
    "steer.elephant_flow": FindingInfo(
        _I,
        "one flow is bigger than a queue's fair share",
        "A single flow always hashes to one queue and one CPU: no steering can spread it. "
        "Split it at the application (more connections) or accept one busy core.",
        meaning="`steer`: one flow carries more than a queue's fair share (and >= 10%)",
        prior_art="no common name",
    ),
    "host.listen_hash_hotspot": FindingInfo(
        _W,
        "each SYN walks a long chain of listening sockets",
        "Before Linux 4.17 the listening-socket lookup (__inet_lookup_listener) searches 32 "
        "buckets keyed by port only and scores every socket in the bucket, every reuseport "
        "worker's socket included, in softirq: with thousands of such sockets per bucket the "
        "CPUs taking SYNs burn in softirq (incident 3). Fixes: a kernel with lhash2 (4.17, "
        "always used from 5.0); fewer SO_REUSEPORT sockets per port; a larger "
        "INET_LHTABLE_SIZE in a custom kernel.",
        ("linux-listen-hash-32",),
        meaning=(
            "`listen`: a SYN walks >= 100 listening sockets under the kernel's lookup scheme (32 "
            "port-only buckets before 4.17)"
        ),
        prior_art="perf: `__inet_lookup_listener` hot in softirq",
    ),
    "host.nic_drop": FindingInfo(
        _W,
        "the NIC dropped packets before the kernel saw them",
        "rx_missed_errors / rx_fifo_errors / rx_over_errors rise: the NIC had no free RX "
        "descriptor (the ring was full because the CPU serving that queue did not refill it in "
        "time). Chain: ring size -> the queue IRQ's CPU -> softirq load on it. Fixes: a bigger "
        "ring (ethtool -G), spreading queues over more CPUs, less work per packet.",
        meaning="`doctor`: the NIC dropped packets before the kernel saw them",
        prior_art="ethtool -S missed/fifo counters; node_exporter node_network_receive_fifo_total",
    ),
    "host.stack_drop": FindingInfo(
        _W,
        "rx_dropped rises while the NIC error counters are flat",
        "The NIC delivered these packets and the kernel dropped them. The classic cause is "
        "frames no protocol handler takes (802.3/LLC spanning-tree BPDUs: incident 2; LLDP; "
        "vendor EtherTypes): __netif_receive_skb_core counts them in rx_dropped on every "
        "kernel (rx_nohandler only for inactive bond/team slaves). `netsleuth drops` names "
        "the kernel function, the reason and the protocol.",
        meaning="`doctor`: rx_dropped rises while the NIC error counters are flat",
        prior_art="node_exporter node_network_receive_drop_total",
    ),
    "host.nohandler": FindingInfo(
        _I,
        "frames arrive for a protocol nothing on the host handles",
        "rx_nohandler (Linux 4.6+) counts frames __netif_receive_skb_core freed for lack of a "
        "protocol handler on devices that deliver exact matches only (inactive bonding/team "
        "slaves; other devices count these in rx_dropped): frames the active slave would "
        "take, BPDUs, LLDP. Usually harmless; `netsleuth drops` shows the protocol.",
        meaning="`doctor`: frames arrive for a protocol nothing on the host handles",
        prior_art="ip -s -s link (rx_nohandler)",
    ),
    "host.softnet_backlog_drop": FindingInfo(
        _W,
        "the per-CPU input backlog overflowed",
        "softnet_stat's dropped column: packets queued to a CPU's backlog (RPS, netif_rx from "
        "veth/tunnels) found it at net.core.netdev_max_backlog. Raise the limit and spread the "
        "load; check received_rps and softirq time per CPU.",
        meaning="`doctor`: the per-CPU input backlog overflowed",
        prior_art="softnet_stat column 2; netdata softnet dropped",
    ),
    "host.softnet_squeeze": FindingInfo(
        _W,
        "the receive softirq keeps running out of budget",
        "softnet_stat's time_squeeze: net_rx_action stopped with work left because "
        "netdev_budget packets or netdev_budget_usecs passed. Frequent squeezes mean the CPU "
        "cannot keep up in softirq; packets wait in rings and backlogs and later drop.",
        meaning="`doctor`: the receive softirq keeps running out of budget",
        prior_art="softnet_stat column 3; netdata softnet squeezed",
    ),
    "host.softirq_hotspot": FindingInfo(
        _W,
        "receive processing piles onto a few CPUs",
        "NET_RX softirqs or softirq time concentrate on few CPUs (incident 3). Chain: which "
        "queue IRQs those CPUs serve -> per-queue packet counts (RSS spread) -> received_rps "
        "(RPS spread) -> the encapsulation of the traffic (outer-only hashing, GRE v1) -> "
        "`netsleuth steer` on a capture.",
        meaning="`doctor`: receive processing piles onto a few CPUs",
        prior_art="mpstat %soft; top si",
    ),
    "host.irq_imbalance": FindingInfo(
        _W,
        "a device's queue IRQs share few CPUs",
        "The queue interrupts of one device are served by at most half as many CPUs as they "
        "could be: the queues exist but their work lands on the same cores (no irqbalance, or "
        "affinity pinned to one CPU).",
        meaning="`doctor`: a device's queue IRQs share few CPUs",
        prior_art="irqbalance; /proc/irq/N/smp_affinity_list",
    ),
    "host.rss_queue_imbalance": FindingInfo(
        _W,
        "one RX queue takes far more packets than the others",
        "Per-queue packet counters are skewed (max >= 2x mean): the NIC's RSS hash sees few "
        "distinct flows, typically tunnels hashed on their outer header or one elephant flow. "
        "`netsleuth steer` on a capture predicts the spread and shows what would fix it.",
        meaning="`doctor`: one RX queue takes far more packets than the others",
        prior_art="ethtool -S per-queue counters; ethq",
    ),
    "host.rps_imbalance": FindingInfo(
        _W,
        "RPS steers most packets to one CPU",
        "received_rps in softnet_stat is skewed while RPS is on: the software flow hash sees "
        "few distinct keys (GRE version 1 before Linux 4.10, one big flow).",
        meaning="`doctor`: RPS steers most packets to one CPU",
        prior_art="softnet_stat column 10",
    ),
    "host.listen_overflow": FindingInfo(
        _W,
        "TCP accept queues overflowed",
        "TcpExt ListenOverflows / ListenDrops rose: connections were dropped because a "
        "listener's accept queue was full. The application accepts too slowly or its backlog "
        "(listen(), net.core.somaxconn) is too small.",
        meaning="`doctor`: TCP accept queues overflowed",
        prior_art="nstat TcpExtListenOverflows",
    ),
    "host.reassembly_failures": FindingInfo(
        _W,
        "IPv4 reassembly failed",
        "Ip ReasmFails rose: fragments were dropped because datagrams timed out (ReasmTimeout),"
        " overlapped (Linux discards those) or exceeded limits. A capture through `netsleuth "
        "scan` shows which trains.",
        meaning="`doctor`: IPv4 reassembly failed",
        prior_art="nstat IpReasmFails",
    ),
    "host.ring_small": FindingInfo(
        _I,
        "an RX ring is well below its maximum size",
        "The RX ring holds at most half the descriptors the NIC supports (<= 1024): fine at low"
        " rates, the first thing to raise when host.nic_drop appears (then this finding is a "
        "warning).",
        meaning="`doctor`: an RX ring is well below its maximum size",
        prior_art="ethtool -g",
    ),
    "drops.location": FindingInfo(
        _W,
        "the kernel dropped packets at this location",
        "Packets freed as dropped (tracepoint skb:kfree_skb) at this kernel function, with "
        "this drop reason and protocol. No explanation is known for this group: the "
        "function and offset are where to read the kernel source. Groups with a known cause "
        "carry their own explanation and severity (info when harmless).",
        meaning=(
            "`drops`: packets the kernel freed as dropped, one finding per location x reason x "
            "protocol; known causes carry their own explanation and severity (info: STP/LLC on a "
            "non-bridge host, NO_SOCKET, NETFILTER_DROP, OTHERHOST...; warning: CPU_BACKLOG, "
            "SOCKET_RCVBUFF, checksums...), unexplained groups are warnings from 100 drops"
        ),
        prior_art="dropwatch (location only), bcc tcpdrop, pwru, retis",
    ),
    "profile.softirq_saturated": FindingInfo(
        _W,
        "a CPU spends most of its time in softirq",
        "Kernel stacks sampled on this CPU (perf_event_open, cpu-clock) are in softirq at "
        "least half of the time, mostly NET_RX: the receive path is this CPU's bottleneck "
        "(incident 3). The hot functions below say what it does; `netsleuth doctor` says "
        "how the load gets there (queue IRQs, RSS, RPS).",
        meaning=(
            "`profile`: a CPU's sampled kernel stacks are in softirq at least half of the time "
            "(from 50 samples)"
        ),
        prior_art="mpstat %soft; perf top -C",
    ),
    "profile.hot_function": FindingInfo(
        _W,
        "a known costly kernel function dominates the receive softirq",
        "A function of the causes table (src/netsleuth/data/profile_causes.json) is on the "
        "stack of at least 20% of a CPU's NET_RX samples. Each cause carries its own "
        "explanation, severity, next step and source.",
        meaning=(
            "`profile`: a cause of `src/netsleuth/data/profile_causes.json` is on >= 20% of a "
            "CPU's NET_RX samples (from 50); each cause carries its own severity, explanation, "
            "next step and source"
        ),
        prior_art="perf top -C CPU; STGW's stack monitor (incident 3)",
    ),
}


def catalogue_finding(
    fid: str,
    count: int,
    packets: tuple[int, ...] = (),
    layer: str | None = None,
    *,
    summary: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> Finding:
    """A finding with the catalogue's severity, text and refs for `fid`."""
    info = CATALOGUE.get(fid)
    if info is None:
        raise KeyError(f"finding id {fid!r} is not in the catalogue (findings/catalogue.py)")
    return Finding(
        fid,
        info.severity,
        count,
        summary or info.summary,
        info.explanation,
        packets,
        layer,
        info.refs,
        None,
        evidence or {},
    )
