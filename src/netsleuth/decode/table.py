"""PacketTable: one row per packet, struct-of-arrays, filled layer by layer by the decoders.

"outer" holds the first IP layer of a packet and "inner" the last one (the innermost after
tunnels are peeled); for a packet with one IP layer both hold the same values.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture.batch import INBOUND, OUTBOUND, ByteViews, RecordBatch

I64 = NDArray[np.int64]
Mask = NDArray[np.bool_]


class NS(enum.IntEnum):
    """Dispatch namespaces: a decoder hands on (namespace, key) and never picks its child."""

    DONE = 0
    LINKTYPE = 1  # pcap LINKTYPE_* values
    FRAME = 2  # internal frame kinds (FrameKey)
    ETHERTYPE = 3  # IEEE 802 EtherType, also GRE and Geneve "protocol type"
    IPPROTO = 4  # IP protocol / IPv6 next header
    UDPPORT = 5  # UDP port (udp.payload_port picks source or destination)
    PPP = 6  # PPP protocol number
    # The protocol type of GRE (RFC 2784 section 2.4) and Geneve (RFC 8926 section 3.4):
    # EtherType values, but bound apart from Ethernet's (keys are bound per parent): ERSPAN
    # 0x88BE, Transparent Ethernet Bridging 0x6558 and PPP 0x880B mean something inside
    # GRE only; as a bare EtherType on Ethernet they are not these headers.
    TUNNEL_PROTO = 7


NS_SIZES = {
    NS.LINKTYPE: 1 << 16,
    NS.FRAME: 16,
    NS.ETHERTYPE: 1 << 16,
    NS.IPPROTO: 256,
    NS.UDPPORT: 1 << 16,
    NS.PPP: 1 << 16,
    NS.TUNNEL_PROTO: 1 << 16,
}


class FrameKey(enum.IntEnum):
    ETHERNET = 1
    LLC = 2  # an IEEE 802.2 LLC header (after an 802.3 length field, or SLL protocol 4)
    RAWIP = 3  # IPv4 or IPv6 told apart by the version nibble
    PIM_REGISTER = 4  # the data packet inside a PIM Register (a tunnel: pim.py)
    PIM_NULL_REGISTER = 5  # a Null-Register's dummy IP header (pim.py)


class L2(enum.IntEnum):
    NONE = 0
    ETHERNET = 1
    IEEE8023 = 2  # 802.3 frame with a length field, then LLC
    SLL = 3
    SLL2 = 4
    RAW = 5
    NULL = 6  # BSD loopback
    UNKNOWN = 7
    PPP = 8  # LINKTYPE_PPP, and PPP-in-HDLC (50) starting 0xff
    CHDLC = 9  # Cisco HDLC (104), and 50 starting 0x0f/0x8f
    NFLOG = 10  # Linux netfilter log (239)
    FRELAY = 11  # Frame Relay (107)
    IPNET = 12  # Solaris ipnet (226)
    IPOIB = 13  # IP over InfiniBand (242)
    IEEE80211 = 14  # Wi-Fi (105), and behind radiotap (127)
    ARCNET = 15  # ARCnet as Linux captures it (129)
    ATM = 16  # IP over ATM: RFC 1483 LLC (100), Classical IP (106)
    ERF_META = 17  # an ERF provenance record (decode/erfmeta.py): metadata, no frame


class Tunnel(enum.IntEnum):
    NONE = 0
    GRE = 1  # version 0 (RFC 2784/2890)
    PPTP = 2  # GRE version 1, enhanced GRE (RFC 2637)
    IPIP = 3  # IP protocol 4: IPv4 inside IPv4 or IPv6
    IP6 = 4  # IP protocol 41: IPv6 inside IPv4 (6in4) or IPv6
    VXLAN = 5
    GENEVE = 6
    ERSPAN = 7
    TEREDO = 8  # IPv6 in UDP (RFC 4380)
    GTPU = 9  # GTP-U (3GPP TS 29.281)
    L2TP = 10  # L2TPv2 (RFC 2661) / L2TPv3 (RFC 3931) over UDP; L2TPv3 over IP (protocol 115)
    GRE_UDP = 11  # GRE in UDP (RFC 8086): a GRE header, keyed by UDP on the way in
    MPLS_UDP = 12  # MPLS in UDP (RFC 7510)
    VXLAN_GPE = 13  # VXLAN Generic Protocol Extension (draft-ietf-nvo3-vxlan-gpe)
    PIM = 14  # a PIM Register's data packet (RFC 7761 section 4.9.3)
    ETHERIP = 15  # Ethernet in IP: EtherIP (97, RFC 3378) or protocol 143 (RFC 8986)
    MPLS_IP = 16  # IP protocol 137: MPLS in IPv4 or IPv6 (RFC 4023 section 3)


class Shim(enum.IntFlag):
    """Headers between the link layer and the first IP header that a NIC's RSS parser or
    the kernel's flow dissector may not step over (steering/model.py reads PacketTable.shim).
    """

    PPPOE = 0x01
    MPLS = 0x02
    NSH = 0x04
    VNTAG = 0x08
    ETAG = 0x10
    PBB = 0x20
    MACSEC = 0x40


class Anomaly(enum.IntEnum):
    """Decode anomalies: bit numbers in PacketTable.anom_outer / anom_inner."""

    L2_TRUNCATED = 0
    L2_BAD_LENGTH = 1
    L2_UNKNOWN_ETHERTYPE = 2
    # 3 was UNSUPPORTED_LINKTYPE: an unbound link type is L2.UNKNOWN, named by
    # checks/linktype.py.
    VLAN_TOO_DEEP = 4
    MPLS_TRUNCATED = 5
    MPLS_TOO_DEEP = 6
    IP_BAD_VERSION = 7
    IPV4_TRUNCATED = 8
    IPV4_BAD_HEADER_LENGTH = 9
    IPV4_BAD_TOTAL_LENGTH = 10
    IPV6_TRUNCATED = 11
    IPV6_BAD_PAYLOAD_LENGTH = 12
    IPV6_EXT_CHAIN_TOO_LONG = 13
    IPV6_EXT_TRUNCATED = 14
    TCP_TRUNCATED = 15
    TCP_BAD_HEADER_LENGTH = 16
    UDP_TRUNCATED = 17
    UDP_BAD_LENGTH = 18
    ICMP_TRUNCATED = 19
    GRE_BAD_VERSION = 20
    GRE_ROUTING = 21
    TUNNEL_TRUNCATED = 22
    TUNNEL_BAD_VERSION = 23
    TUNNEL_TOO_DEEP = 24
    DECODE_TOO_DEEP = 25
    LLC_TRUNCATED = 26
    BAD_PSEUDO_HEADER = 27


ANOMALY_IDS: dict[Anomaly, str] = {
    Anomaly.L2_TRUNCATED: "l2.truncated",
    Anomaly.L2_BAD_LENGTH: "l2.bad_length",
    Anomaly.L2_UNKNOWN_ETHERTYPE: "l2.unknown_ethertype",
    Anomaly.VLAN_TOO_DEEP: "vlan.too_deep",
    Anomaly.MPLS_TRUNCATED: "mpls.truncated",
    Anomaly.MPLS_TOO_DEEP: "mpls.too_deep",
    Anomaly.IP_BAD_VERSION: "ip.bad_version",
    Anomaly.IPV4_TRUNCATED: "ipv4.truncated",
    Anomaly.IPV4_BAD_HEADER_LENGTH: "ipv4.bad_header_length",
    Anomaly.IPV4_BAD_TOTAL_LENGTH: "ipv4.bad_total_length",
    Anomaly.IPV6_TRUNCATED: "ipv6.truncated",
    Anomaly.IPV6_BAD_PAYLOAD_LENGTH: "ipv6.bad_payload_length",
    Anomaly.IPV6_EXT_CHAIN_TOO_LONG: "ipv6.ext_chain_too_long",
    Anomaly.IPV6_EXT_TRUNCATED: "ipv6.ext_truncated",
    Anomaly.TCP_TRUNCATED: "tcp.truncated",
    Anomaly.TCP_BAD_HEADER_LENGTH: "tcp.bad_header_length",
    Anomaly.UDP_TRUNCATED: "udp.truncated",
    Anomaly.UDP_BAD_LENGTH: "udp.bad_length",
    Anomaly.ICMP_TRUNCATED: "icmp.truncated",
    Anomaly.GRE_BAD_VERSION: "gre.bad_version",
    Anomaly.GRE_ROUTING: "gre.routing",
    Anomaly.TUNNEL_TRUNCATED: "tunnel.truncated",
    Anomaly.TUNNEL_BAD_VERSION: "tunnel.bad_version",
    Anomaly.TUNNEL_TOO_DEEP: "tunnel.too_deep",
    Anomaly.DECODE_TOO_DEEP: "decode.too_deep",
    Anomaly.LLC_TRUNCATED: "l2.llc_truncated",
    Anomaly.BAD_PSEUDO_HEADER: "l2.bad_pseudo_header",
}

# Anomalies that only mean "the header did not fit in the captured bytes". On a packet cut
# by the capture's snap length that is the capture's doing, not the packet's: it is counted
# by capture.truncated_packet instead and the bit is not set.
TRUNCATION = frozenset(
    {
        Anomaly.L2_TRUNCATED,
        Anomaly.MPLS_TRUNCATED,
        Anomaly.IPV4_TRUNCATED,
        Anomaly.IPV6_TRUNCATED,
        Anomaly.IPV6_EXT_TRUNCATED,
        Anomaly.TCP_TRUNCATED,
        Anomaly.UDP_TRUNCATED,
        Anomaly.ICMP_TRUNCATED,
        Anomaly.TUNNEL_TRUNCATED,
        Anomaly.LLC_TRUNCATED,
    }
)

# The smallest Ethernet frame, FCS included (IEEE 802.3 clause 4.4.2): a frame shorter on
# the wire cannot end in both padding and an FCS, so tshark takes none (settle_fcs).
ETH_FCS_MIN = 64
ETH_HLEN = 14  # destination, source, length/type (IEEE 802.3 clause 3.2)
ETH_FCS = 4  # the frame check sequence of every Ethernet frame (clause 3.2.9)
FLAG_DF = 0x2  # IPv4 "don't fragment" (RFC 791 section 3.1)
FLAG_MF = 0x1  # more fragments (IPv4 flags, or the IPv6 fragment header's M bit)


class IPLayer:
    """The fields of one IP layer (and its transport header) for every packet."""

    def __init__(self, n: int) -> None:
        z = np.zeros
        self.ver = z(n, np.uint8)  # 0 none, 4, 6
        self.off = z(n, np.int32)  # IP header offset from the packet start
        self.hlen = z(n, np.uint16)  # IPv4 header / IPv6 header + extension headers
        self.tot_len = z(n, np.uint32)  # IPv4 total length; IPv6 40 + payload length
        self.ident = z(n, np.uint32)  # IPv4 id or IPv6 fragment header id
        self.flags = z(n, np.uint8)  # FLAG_DF | FLAG_MF
        self.frag_off = z(n, np.uint32)  # fragment offset in bytes
        self.is_frag = z(n, np.bool_)  # IPv4 MF or offset; IPv6 fragment header present
        # Where the fragment's data starts (offset from the packet start): after the IPv4
        # header, or after the IPv6 fragment header (RFC 8200 section 4.5).
        self.frag_data = z(n, np.int32)
        self.ttl = z(n, np.uint8)  # TTL / hop limit
        self.flow_label = z(n, np.uint32)  # IPv6 only (RFC 6437)
        self.proto = z(n, np.uint8)  # upper-layer protocol after extension headers
        self.checksum = z(n, np.uint16)
        # IPv4 only: does the header checksum verify? Computed by the decoder while it holds
        # the header bytes (RFC 1071), as a NIC reports CHECKSUM_UNNECESSARY.
        self.csum_ok = z(n, np.bool_)
        self.src4 = z(n, np.uint32)
        self.dst4 = z(n, np.uint32)
        self.src6 = z((n, 16), np.uint8)
        self.dst6 = z((n, 16), np.uint8)
        self.l4_off = z(n, np.int32)  # 0 when no transport header was decoded
        self.sport = z(n, np.uint16)
        self.dport = z(n, np.uint16)
        self.tcp_flags = z(n, np.uint16)
        self.l4_len = z(n, np.uint32)  # UDP length field
        self.icmp_type = z(n, np.int16) - 1
        self.icmp_code = z(n, np.int16) - 1

    def clear_l4(self, idx: I64) -> None:
        for name in ("l4_off", "sport", "dport", "tcp_flags", "l4_len"):
            getattr(self, name)[idx] = 0
        self.icmp_type[idx] = -1
        self.icmp_code[idx] = -1


IP_FIELDS = tuple(vars(IPLayer(0)))


def loop_column(
    a: NDArray[Any], dtype: type[np.generic], name: str, *, writable: bool = False
) -> NDArray[Any]:
    """A column as a compiled loop reads it (decode/_prefix.c, steering/_fields.c): of
    exactly `dtype` and C-contiguous (and writeable where the loop writes), else TypeError
    naming the column, so a schema change fails loudly rather than being misread."""
    if a.dtype != dtype or not a.flags.c_contiguous or (writable and not a.flags.writeable):
        raise TypeError(f"{name}: {a.dtype} array, a compiled loop needs {dtype}")
    return a


class _Merged:
    """An inner-layer field: the outer value where a packet has a single IP layer, the
    decoded inner value elsewhere. Computed on first read and cached, so fields no check
    reads cost nothing."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: InnerLayer, objtype: type | None = None) -> NDArray[Any]:
        got = obj.cache.get(self.name)
        if got is None:
            outer = getattr(obj.outer, self.name)
            single = obj.single if outer.ndim == 1 else obj.single[:, None]
            got = np.where(single, outer, getattr(obj.raw, self.name))
            obj.cache[self.name] = got
        return got


class InnerLayer:
    """The innermost IP layer of every packet (read-only), merged from outer and raw."""

    ver = _Merged()
    off = _Merged()
    hlen = _Merged()
    tot_len = _Merged()
    ident = _Merged()
    flags = _Merged()
    frag_off = _Merged()
    is_frag = _Merged()
    frag_data = _Merged()
    ttl = _Merged()
    flow_label = _Merged()
    proto = _Merged()
    checksum = _Merged()
    csum_ok = _Merged()
    src4 = _Merged()
    dst4 = _Merged()
    src6 = _Merged()
    dst6 = _Merged()
    l4_off = _Merged()
    sport = _Merged()
    dport = _Merged()
    tcp_flags = _Merged()
    l4_len = _Merged()
    icmp_type = _Merged()
    icmp_code = _Merged()

    def __init__(self, outer: IPLayer, raw: IPLayer, single: Mask) -> None:
        self.outer = outer
        self.raw = raw
        self.single = single
        self.cache: dict[str, NDArray[Any]] = {}


Targets = list[tuple[IPLayer, I64, Mask | None]]
Layer = IPLayer | InnerLayer  # what readers of a PacketTable's outer/inner layer get


# Directions as pcapng's epb_flags gives them (section 4.3.1), for PacketTable.way.
WAY_IN, WAY_OUT = INBOUND, OUTBOUND


class PacketTable:
    """Decoded fields of one RecordBatch, plus the decoder engine's cursor state."""

    def __init__(self, batch: RecordBatch) -> None:
        n = len(batch)
        z = np.zeros
        self.batch = batch
        self.n = n
        self.v = ByteViews(batch.buf)
        self.frame = batch.frame
        self.start = batch.offset
        self.end = batch.offset + batch.caplen  # moves in to the IP payload end (padding)
        # Where the packet ended on the wire (past the captured bytes when snapped); length
        # fields are checked against this, so a snap length never looks like corruption.
        self.wend = batch.offset + batch.wirelen
        self.snapped = batch.caplen < batch.wirelen
        # The frame ends in its 4-byte FCS (RecordBatch.fcs_len; decided after decoding,
        # settle_fcs), and the frame's lengths without it: what the checks and steering
        # call a frame's size, as a capture without the FCS gives it.
        self.fcs = z(n, np.bool_)
        self.frame_len = batch.wirelen
        self.frame_caplen = batch.caplen
        if batch.fcs_len is not None:
            self._leave_out_declared_fcs(batch.fcs_len)
        # Cursor: where the next header starts and what it is.
        self.pos = batch.offset.copy()
        self.ns = np.full(n, NS.LINKTYPE, dtype=np.uint8)
        self.key = batch.linktype.astype(np.int64)
        self.tunnels = z(n, np.uint8)  # tunnels peeled so far
        self.nip = z(n, np.uint8)  # IP layers seen so far
        self.anom_outer = z(n, np.uint64)
        self.anom_inner = z(n, np.uint64)
        # Link layer.
        self.l2 = z(n, np.uint8)  # L2 of the outermost frame
        self.ethertype = z(n, np.uint16)  # last EtherType seen (after VLAN tags)
        self.vlan_n = z(n, np.uint8)
        self.vlan1 = z(n, np.uint16)  # outermost VLAN id
        self.vlan2 = z(n, np.uint16)  # second VLAN id (QinQ inner)
        # Where a link header says the packet was seen, for the fragment keys: Linux cooked
        # captures (sll.py) give the interface index (SLL2 only) and packet type (host,
        # broadcast, multicast, otherhost, outgoing); PKTAP (pktap.py) the interface's type
        # and unit, and the direction; Solaris ipnet (ipnet.py) the interface index and
        # the hook (inbound, outbound, local).
        self.ifindex = z(n, np.uint32)
        self.pkttype = z(n, np.uint8)
        # The direction the link header gives, in pcapng's epb_flags terms (WAY_IN, WAY_OUT;
        # 0 where it says none), whatever its own encoding.
        self.way = z(n, np.uint8)
        self.mpls_n = z(n, np.uint8)
        self.mpls_label = z(n, np.uint32)  # top label
        self.llc_dsap = z(n, np.int16) - 1
        self.llc_ssap = z(n, np.int16) - 1
        self.llc_ctrl = z(n, np.int16) - 1
        self.snap_type = z(n, np.int32) - 1
        self.stp_version = z(n, np.int16) - 1  # 0 STP, 2 RSTP, 3 MSTP (802.1Q-2018 14.2)
        self.stp_type = z(n, np.int16) - 1  # BPDU type: 0x00 config, 0x80 TCN, 0x02 RST/MST
        # Tunnels.
        self.tunnel = z(n, np.uint8)  # outermost tunnel kind
        self.tunnel_inner = z(n, np.uint8)  # innermost tunnel kind
        self.tun_off = z(n, np.int32)  # offset of the outermost tunnel header
        self.gre_flags = z(n, np.uint16)  # first 16 bits of the last GRE header
        self.gre_proto = z(n, np.uint16)
        self.gre_key = z(n, np.int64) - 1  # GRE key, or PPTP call id; -1 when absent
        self.vni = z(n, np.int64) - 1  # VXLAN/Geneve VNI, ERSPAN session id; -1 absent
        self.ppp_proto = z(n, np.uint16)
        # Shim flags seen before the first IP layer of the outermost frame.
        self.shim = z(n, np.uint8)
        self.outer = IPLayer(n)
        # Decoders write a packet's second and deeper IP layers here; readers use `inner`.
        self.inner_raw = IPLayer(n)
        self._inner: IPLayer | InnerLayer | None = None

    def _leave_out_declared_fcs(self, fcs_len: NDArray[np.int8]) -> None:
        """The octets of FCS a capture declares (RecordBatch.fcs_len) are no payload: left
        out of what the decoders read, as packet-ethertype.c leaves them out of the payload
        it hands on (where the frame holds them past its Ethernet header), so a length
        field running into them is bad and no header is read from them. Whether they are
        the frame's 4-byte FCS is settled after decoding (settle_fcs)."""
        b = self.batch
        declared = np.maximum(fcs_len, 0).astype(np.int64)  # -1: not declared (ERF)
        cut = np.where((b.linktype == 1) & (b.wirelen >= ETH_HLEN + declared), declared, 0)
        if not cut.any():
            return
        self.wend -= cut
        np.minimum(self.end, self.wend, out=self.end)
        # A record cut only inside them holds the whole frame.
        self.snapped = b.caplen < b.wirelen - cut

    def settle_fcs(self) -> None:
        """Which Ethernet frames end in a 4-byte FCS (fcs), as tshark 4.0 reads the same
        records, from what each record's capture says of it (RecordBatch.fcs_len):

        - 4 octets declared (pcapng's if_fcslen or epb_flags, a pcap header's FCS length; a
          Shomiti snoop file's Ethernet frames, which wiretap/snoop.c gives an fcs_len of 4):
          the last 4 bytes are the FCS on any frame that holds them past its header, also
          a frame under the 64-byte minimum (packet-eth.c's add_ethernet_trailer takes them
          when told 4; a VLAN-tagged frame's too, unlike below).
        - 0 declared: none. A pcap or pcapng capture that says nothing is taken to hold
          none too (RecordBatch.fcs_len), where tshark guesses as below.
        - Another length declared: those octets are no payload (_leave_out_declared_fcs)
          and the heuristic below decides, as tshark's does for any length but 0 and 4.
        - The format keeps the FCS but does not say so (-1: ERF's Ethernet records): the
          heuristic, packet-eth.c's for an FCS length it is not told (the eth.fcs
          preference "According to heuristic" by default; packet-erf.c's own ethfcs
          preference is obsolete).

        The heuristic (add_ethernet_trailer) takes the last 4 bytes for the FCS when the
        frame is 64 bytes or more on the wire and 4 or more bytes follow its payload. The
        payload ends where its outermost length says: the first IP layer's total length,
        else (an 802.3 frame's LLC, ARP, PPPoE, whose lengths trimmed wend; anything no
        length bounds) wend. A frame under the 64-byte minimum, or whose payload runs to
        its end, has no FCS, so an ERF file written without FCSs (scapy's
        ERFEthernetWriter) reads as its frames. An IPv4 length shorter than its own header
        (a bogus one, or 0 as TSO leaves it) says nothing of where the payload ends, and
        tshark then takes the frame whole: no FCS. An IPv6 payload length of 0 on the wire
        is an empty payload (decode/ipv6.py), as tshark reads it too: what follows the
        header is trailer and FCS. Judged on wire lengths, so a record the card's snap
        length cut after its IP header is judged as the whole frame would be; one cut
        inside it has no length to go by, and no FCS is taken, as in tshark.

        Two differences from tshark 4.0 where it says nothing: a VLAN-tagged frame's 802.1Q
        dissector passes no FCS on (tshark shows the 4 bytes as its trailer), and a PPPoE
        session frame shows neither FCS nor trailer (packet-pppoe.c bounds the PPP payload
        by its length on a sub-buffer of its own and leaves the Ethernet payload whole, so
        packet-ethertype.c finds no bytes left over and never asks the heuristic). Here
        both end in the FCS they do, which changes the frame's size only: runts, padding
        and steering loads are the frame's as on any other."""
        fcs_len = self.batch.fcs_len
        if fcs_len is None or self.n == 0:
            return
        b = self.batch
        eth = b.linktype == 1
        fcs = eth & (fcs_len == ETH_FCS) & (b.wirelen >= ETH_HLEN + ETH_FCS)
        guess = eth & (fcs_len != 0) & (fcs_len != ETH_FCS)
        if guess.any():
            fcs |= guess & self._fcs_by_heuristic()
        self.fcs = fcs
        self.frame_len = b.wirelen - np.where(fcs, ETH_FCS, 0)
        self.frame_caplen = np.minimum(b.caplen, self.frame_len)
        # A record cut only inside its FCS holds the whole frame.
        self.snapped = self.frame_caplen < self.frame_len

    def _fcs_by_heuristic(self) -> Mask:
        """packet-eth.c's guess (settle_fcs): 64 bytes or more on the wire, and 4 or more
        after the payload's end."""
        b, o = self.batch, self.outer
        tot = o.tot_len.astype(np.int64)
        ip_end = self.start + o.off.astype(np.int64) + tot
        payload_end = np.where((o.ver != 0) & (tot >= o.hlen), ip_end, self.wend)
        after = b.offset + b.wirelen - payload_end
        guessed: Mask = (b.wirelen >= ETH_FCS_MIN) & (after >= ETH_FCS)
        return guessed

    # ----- helpers the decoders share -------------------------------------------------
    def fits(self, idx: I64, nbytes: int | I64) -> Mask:
        """Which packets have `nbytes` more captured bytes at their cursor."""
        ok: Mask = self.pos[idx] + nbytes <= self.end[idx]
        return ok

    def sent(self) -> Mask:
        """Which packets the capture marks as sent by its host: by the link header (way:
        a cooked capture's PACKET_OUTGOING, PKTAP's, ipnet's, NFLOG's output hooks) or by
        pcapng's epb_flags (or the live ring's packet type, RecordBatch.direction)."""
        out: Mask = self.way == WAY_OUT
        if self.batch.direction is not None:
            out |= self.batch.direction == WAY_OUT
        return out

    def stop(self, idx: I64) -> None:
        self.ns[idx] = NS.DONE

    def flag(self, idx: I64, anomaly: Anomaly) -> None:
        """Record a named anomaly on the packets' current layer and stop their descent."""
        if idx.shape[0] == 0:
            return
        self.ns[idx] = NS.DONE
        if anomaly in TRUNCATION:
            # Excused only where the capture's end cut the header: a length field that
            # ends the data earlier (an IPv4 total length of 23 before an ICMP header)
            # made it too short on the wire.
            at_capture_end = self.end[idx] == self.batch.offset[idx] + self.batch.caplen[idx]
            idx = idx[~(self.snapped[idx] & at_capture_end)]
        bit = np.uint64(1 << int(anomaly))
        tunnelled = self.tunnels[idx] > 0
        self.anom_inner[idx[tunnelled]] |= bit
        self.anom_outer[idx[~tunnelled]] |= bit

    def short(self, idx: I64, nbytes: int | I64, anomaly: Anomaly) -> I64:
        """Flag the packets lacking `nbytes` at the cursor; return the ones that have them."""
        ok = self.fits(idx, nbytes)
        if not ok.all():
            self.flag(idx[~ok], anomaly)
            return idx[ok]
        return idx

    def mark_shim(self, idx: I64, shim: Shim) -> None:
        """Note a shim header in front of the packet's first IP layer (outside tunnels)."""
        front = idx[(self.nip[idx] == 0) & (self.tunnels[idx] == 0)]
        self.shim[front] |= np.uint8(shim)

    def hand_on(self, idx: I64, newpos: I64, ns: NS, key: I64 | int) -> None:
        self.pos[idx] = newpos
        self.ns[idx] = ns
        self.key[idx] = key

    def trim(self, idx: I64, new_end: I64) -> None:
        """A length field bounds the payload: what follows (Ethernet padding) is not data."""
        self.end[idx] = np.minimum(self.end[idx], new_end)
        self.wend[idx] = np.minimum(self.wend[idx], new_end)

    def short_l4(self, idx: I64, nbytes: int | I64, anomaly: Anomaly) -> I64:
        """Like short(), but a transport header cut by a fragment boundary is not an anomaly
        of the transport protocol (a tiny first fragment is the fragment audit's business)."""
        ok = self.fits(idx, nbytes)
        if ok.all():
            return idx
        bad = idx[~ok]
        frag = self.cur_is_frag(bad)
        self.stop(bad[frag])
        self.flag(bad[~frag], anomaly)
        return idx[ok]

    def ip_targets(self, idx: I64) -> Targets:
        """Where an IP decoder writes: `outer` for a packet's first IP layer, `inner` for
        later ones. Each field is written once; finalize() copies outer to inner for
        packets with a single IP layer. A None mask means "all of idx"."""
        return self._split(idx, self.nip[idx] == 0)

    def l4_targets(self, idx: I64) -> Targets:
        """Where a transport decoder writes: the layer of the IP header just decoded."""
        return self._split(idx, self.nip[idx] == 1)

    def _split(self, idx: I64, first: Mask) -> Targets:
        if first.all():
            return [(self.outer, idx, None)]
        if not first.any():
            return [(self.inner_raw, idx, None)]
        return [(self.outer, idx[first], first), (self.inner_raw, idx[~first], ~first)]

    def current(self, idx: I64) -> Targets:
        """The layer holding the last IP header decoded for each packet."""
        return self._split(idx, self.nip[idx] <= 1)

    def cur_is_frag(self, idx: I64) -> Mask:
        single = self.nip[idx] <= 1
        if single.all():
            out: Mask = self.outer.is_frag[idx]
            return out
        return np.where(single, self.outer.is_frag[idx], self.inner_raw.is_frag[idx])

    @staticmethod
    def put(targets: Targets, cols: dict[str, object]) -> None:
        """Write columns (arrays aligned with idx, or scalars) to their target layers."""
        for layer, sub, sel in targets:
            for name, val in cols.items():
                part = val[sel] if isinstance(val, np.ndarray) and sel is not None else val
                getattr(layer, name)[sub] = part

    @property
    def inner(self) -> Layer:
        """The innermost IP layer (the outer one for packets with a single IP layer)."""
        if self._inner is None:
            single = self.nip <= 1
            self._inner = (
                self.outer if single.all() else InnerLayer(self.outer, self.inner_raw, single)
            )
        return self._inner
