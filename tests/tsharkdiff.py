"""The differential harness against tshark: what tshark and netsleuth decoded, frame by frame,
for the layers netsleuth covers (issue 12). Used by tests/test_tshark_diff.py.

Every capture's records are written into ONE pcapng (an interface per link type) and tshark
runs once over it: ~10 000 frames take about a second, where one tshark per file takes half
a second each. tshark's rows are cached under the pytest cache, keyed by the SHA-256 of that
pcapng, so the cache is rebuilt whenever it is absent or the inputs change; it is never the
truth, only a saved tshark run.

tshark's answer is its `frame.protocols` chain plus a few fields; both sides are reduced to
the same canonical tuple per layer (`Frame`), which is what is compared.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netsleuth.capture import RecordBatch, open_capture
from netsleuth.decode import L2, REGISTRY, PacketTable, Tunnel, decode
from netsleuth.decode.table import FLAG_MF, NS, Layer
from tests.capfiles import epb, idb, shb

# Options that make tshark's answer depend on the frame alone: no reassembly (netsleuth
# decodes each fragment as it is; fragment state is the fragment audit's), IPv4 header
# checksums verified (off by default in Wireshark 4.0), no name resolution.
TSHARK_OPTIONS = (
    # IPv6 BIG TCP (Linux 6.3): payload length 0 without a jumbo option; netsleuth, like
    # the kernel, takes the length from the frame (ipv6.py), and so does this preference.
    "ipv6.tso_support:TRUE",
    "ip.defragment:FALSE",
    "ipv6.defragment:FALSE",
    "ip.check_checksum:TRUE",
    "tcp.desegment_tcp_streams:FALSE",
    "udp.try_heuristic_first:FALSE",
)
# Ports netsleuth decodes a tunnel on that tshark 4.0 does not by default: Linux's VXLAN
# port before IANA's (drivers/net/vxlan: IANA_VXLAN_UDP_PORT 4789; iproute2's default 8472).
# GRE-in-UDP's IANA port (RFC 8086) is not bound in tshark 4.0 either.
# An MPLS pseudowire's payload (control word or not) is not named on the wire: both guess
# (tshark's pwethheuristic, netsleuth's mpls.py), and the guesses are compared.
DECODE_AS = ("udp.port==8472,vxlan", "udp.port==4754,gre")
FIELDS = (
    "frame.number",
    "frame.protocols",
    "ip.id",
    "ip.flags.mf",
    "ip.frag_offset",
    "ip.checksum.status",
    "llc.dsap",
    "llc.ssap",
    "gre.proto",
    "frame.encap_type",
    "mpls.label",
)
LAYERS = ("link", "vlan", "mpls", "llc", "tunnel", "l3", "frag4", "csum4", "l4", "encap")

# tshark's protocol names for the first layer -> netsleuth's link layer name.
LINK_NAMES = {
    "eth": "ethernet",
    "sll": "sll",
    "null": "null",
    "raw": "raw",
    "ppp": "ppp",
    "chdlc": "chdlc",
    "nflog": "nflog",
    "fr": "framerelay",
    "ipnet": "ipnet",
    "ipoib": "ipoib",
    "radiotap": "ieee80211",
    "wlan": "ieee80211",
    "wlan_radio": "ieee80211",  # behind PPI: tshark's radio summary, then wlan
    "prism": "ieee80211",
    "wlancap": "ieee80211",  # AVS
    "arcnet": "arcnet",
    "clip": "atm",
}
OUR_LINK = {
    L2.ETHERNET: "ethernet",
    L2.IEEE8023: "ieee8023",
    L2.SLL: "sll",
    L2.SLL2: "sll",  # tshark 4.0 calls both "sll"
    L2.RAW: "raw",
    L2.NULL: "null",
    L2.PPP: "ppp",
    L2.CHDLC: "chdlc",
    L2.NFLOG: "nflog",
    L2.FRELAY: "framerelay",
    L2.IPNET: "ipnet",
    L2.IPOIB: "ipoib",
    L2.IEEE80211: "ieee80211",
    L2.ARCNET: "arcnet",
    L2.ATM: "atm",
}
TUNNEL_NAMES = {
    Tunnel.NONE: "none",
    Tunnel.GRE: "gre",
    Tunnel.PPTP: "pptp",
    Tunnel.IPIP: "ipip",
    Tunnel.IP6: "ip6",
    Tunnel.VXLAN: "vxlan",
    Tunnel.GENEVE: "geneve",
    Tunnel.ERSPAN: "erspan",
    Tunnel.TEREDO: "teredo",
    Tunnel.GTPU: "gtpu",
    Tunnel.L2TP: "l2tp",
    Tunnel.GRE_UDP: "greudp",
    Tunnel.MPLS_UDP: "mplsudp",
    Tunnel.VXLAN_GPE: "vxlangpe",
    Tunnel.PIM: "pim",
    Tunnel.ETHERIP: "etherip",
    Tunnel.MPLS_IP: "mplsip",
}
# tshark protocols that are a tunnel header netsleuth decodes (the one right after "gre"
# refines it: ERSPAN and PPTP are GRE with a protocol type).
TSHARK_TUNNELS = {
    "vxlan": "vxlan",
    "geneve": "geneve",
    "teredo": "teredo",
    "gtp": "gtpu",
    "l2tp": "l2tp",
}
GRE_KINDS = {0x88BE: "erspan", 0x22EB: "erspan", 0x880B: "pptp"}
# Protocols netsleuth steps over without a layer of its own.
PASS = {
    "ethertype",
    "wlan_radio",  # tshark's summary of the radiotap fields
    "wlan",
    "wlan_aggregate",  # an A-MSDU's subframes
    "ppp",
    "pppoes",
    "pwethcw",
    "pwethnocw",
    "pwethheuristic",
    "wccp",
    "vntag",
    "etag",
    "ieee8021ah",
    "nsh",
    "macsec",
    "cmd",
    "avsp",
    "ipv6.hopopts",
    "ipv6.routing",
    "ipv6.dstopts",
    "ipv6.fraghdr",  # the fragment header: the transport follows in a first fragment
    "ah",
}
L4 = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "icmpv6": "icmpv6"}
OUR_L4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}
# What follows UDP that netsleuth decodes: the UDP tunnels.
GPE_PAYLOADS = {"ip", "ipv6", "eth", "nsh"}
AFTER_UDP = {*TSHARK_TUNNELS, *GPE_PAYLOADS, "gre", "mpls"}
# Protocols that quote a packet rather than carry one: an IP header tshark shows after them
# is not a layer of the frame.
QUOTES = {"icmp", "icmpv6", "sflow", "openflow", "nhrp"}
STOP = {"_ws.malformed", "_ws.short", "_ws.expert", "_ws.unreassembled", "data"}

Frame = dict[str, object]


@dataclass
class Capture:
    """One capture's records, in order, as RecordBatches."""

    name: str
    batches: list[RecordBatch]
    error: str | None = None

    @property
    def frames(self) -> int:
        return sum(len(b) for b in self.batches)


def read_capture(path: Path) -> Capture:
    from netsleuth.errors import InputError

    try:
        reader = open_capture(str(path))
    except InputError as err:
        return Capture(path.name, [], str(err))
    try:
        return Capture(path.name, list(reader.batches()))
    except InputError as err:
        return Capture(path.name, [], str(err))
    finally:
        reader.source.close()


def merged_pcapng(captures: Iterable[Capture]) -> bytes:
    """Every record of every capture, in order, in one little-endian pcapng section."""
    ifaces: dict[int, int] = {}
    blocks = [shb("<")]
    for cap in captures:
        for b in cap.batches:
            for i in range(len(b)):
                lt = int(b.linktype[i]) & 0xFFFF
                if lt not in ifaces:
                    ifaces[lt] = len(ifaces)
                    blocks.append(idb("<", lt))
                blocks.append(epb("<", ifaces[lt], 0, b.packet(i), wirelen=int(b.wirelen[i])))
    return b"".join(blocks)


def tshark_rows(tshark: str, pcapng: bytes, cache: Path) -> list[list[str]]:
    """tshark's field rows for `pcapng`, from the cache when this exact file was run."""
    args = ["-T", "fields", "-E", "occurrence=a", "-E", "separator=|", "-E", "aggregator=,"]
    for opt in TSHARK_OPTIONS:
        args += ["-o", opt]
    for rule in DECODE_AS:
        args += ["-d", rule]
    for f in FIELDS:
        args += ["-e", f]
    version = subprocess.run([tshark, "--version"], capture_output=True, text=True, check=True)
    # The key covers what tshark read, how it was asked and which tshark answered.
    h = hashlib.sha256(pcapng)
    h.update(json.dumps([args, version.stdout.splitlines()[0]]).encode())
    digest = h.hexdigest()
    hit = cache / f"{digest}.json"
    if hit.is_file():
        rows: list[list[str]] = json.loads(hit.read_text())
        return rows
    cache.mkdir(parents=True, exist_ok=True)
    src = cache / f"{digest}.pcapng"
    src.write_bytes(pcapng)
    cmd = [tshark, "-n", "-r", str(src), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    src.unlink()
    rows = [line.split("|") for line in proc.stdout.splitlines()]
    hit.write_text(json.dumps(rows))
    return rows


@dataclass
class Walk:
    link: str = "none"
    vlan: int = 0
    mpls: int = 0
    llc: bool = False
    tunnels: list[str] = field(default_factory=list)
    ips: list[int] = field(default_factory=list)
    l4: str = "none"
    beyond: str | None = None  # an encapsulation tshark decoded to an IP and netsleuth not


def walk(  # noqa: PLR0912, PLR0915 -- one case per tshark protocol token, read as a table
    protocols: str, gre_protos: tuple[int, ...] = ()
) -> Walk:
    """Follow tshark's protocol chain as far as netsleuth decodes: tags, IP layers, the
    tunnels netsleuth knows, one transport header (or a UDP tunnel after it)."""
    toks = protocols.split(":")
    if toks[0] == "user_dlt" and len(toks) > 1:  # LINKTYPE_USER2 read as PKTAP
        toks = toks[1:]
    if toks[:2] == ["prism", "wlancap"]:  # an AVS header in a Prism capture
        toks = toks[1:]
    if toks[0] in ("ppi", "pktap") and len(toks) > 1:  # headers naming the link type behind
        toks = toks[1:]
        if toks[0] == "pcap_pktdata" and len(toks) > 1:  # tshark's dispatch on that type
            toks = toks[1:]
    w = Walk(link=LINK_NAMES.get(toks[0], "other:" + toks[0]) if toks[0] else "none")
    if toks[:2] == ["ppp", "chdlc"]:  # LINKTYPE_PPP_HDLC holding a Cisco HDLC frame
        w.link, toks = "chdlc", toks[1:]
    if toks[0] in ("ip", "ipv6"):  # LINKTYPE_IPV4/IPV6 have no link header of their own
        w.link, toks = "raw", ["raw", *toks]
    if toks[0] == "llc":  # LINKTYPE_ATM_RFC1483: the LLC header comes first
        w.link, toks = "atm", ["atm", *toks]
    prev = ""
    gres = iter(gre_protos)
    for k, tok in enumerate(toks[1:], start=1):
        nxt = toks[k + 1] if k + 1 < len(toks) else ""
        if tok in STOP:
            break
        if tok in ("ip", "ipv6"):
            if prev in ("ip", "ipv6"):
                w.tunnels.append("ipip" if tok == "ip" else "ip6")
            w.ips.append(4 if tok == "ip" else 6)
            w.l4 = "none"  # an inner layer's own transport, if any (not the tunnel's UDP)
        elif tok in ("vlan", "ieee8021ad"):
            w.vlan += 1
        elif tok == "mpls":
            w.mpls += 1
            if prev == "udp":  # MPLS in UDP (RFC 7510)
                w.tunnels.append("mplsudp")
            elif prev in ("ip", "ipv6"):  # MPLS in IP (RFC 4023), protocol 137
                w.tunnels.append("mplsip")
        elif tok == "pim" and nxt in ("ip", "ipv6"):  # a Register's data packet
            w.tunnels.append("pim")
        elif tok == "llc":
            w.llc = True
            if toks[0] == "eth" and not w.ips and not w.tunnels:
                w.link = "ieee8023"
        elif tok == "gre":
            kind = GRE_KINDS.get(next(gres, 0), "gre")
            w.tunnels.append("greudp" if prev == "udp" and kind == "gre" else kind)
        elif tok in TSHARK_TUNNELS:
            w.tunnels.append(TSHARK_TUNNELS[tok])
        elif tok in L4:
            w.l4 = L4[tok]
            if tok == "udp" and nxt in GPE_PAYLOADS:
                # tshark 4.0 lists no protocol for VXLAN-GPE, only what it carries.
                w.tunnels.append("vxlangpe")
            if tok != "udp" or nxt not in AFTER_UDP:
                w.beyond = _beyond(toks[k + 1 :]) if tok in ("tcp", "udp") else None
                break
        elif tok == "eth" and prev in ("ip", "ipv6"):  # Ethernet in IP (143)
            w.tunnels.append("etherip")
        elif tok == "etherip":
            w.tunnels.append("etherip")
            prev = "etherip"
            continue
        elif tok in PASS or tok in {"eth", "erspan", "pppoed"}:
            pass
        else:
            w.beyond = _beyond(toks[k:])
            break
        if not tok.startswith("ipv6.") and tok != "ethertype":
            prev = tok
    return w


def _beyond(rest: list[str]) -> str | None:
    """The protocol where the walk stopped, if tshark found an IP header behind it that is
    not a quote (an ICMP error's, a sampled packet's): an encapsulation netsleuth missed."""
    for tok in rest:
        if tok in QUOTES or tok in STOP:
            return None
        if tok in ("ip", "ipv6"):
            return rest[0]
    return None


NO_VALUE = "tshark printed no value"  # nothing to compare against
RAW_ENCAPS = {"7", "129", "130"}  # WTAP_ENCAP_RAW_IP, _RAW_IP4, _RAW_IP6


def _occ(value: str) -> list[str]:
    return value.split(",") if value else []


def theirs(row: list[str]) -> Frame:
    w = walk(row[1], tuple(int(p, 16) for p in _occ(row[8])))
    if not row[1] and row[9] in RAW_ENCAPS:
        # tshark lists no protocol for a raw-IP frame whose version nibble is bogus; its
        # encapsulation type still says the link.
        w.link = "raw"
    ids, mfs, offs, stats = (_occ(row[k]) for k in (2, 3, 4, 5))
    # The IPv4 layers tshark decoded, in order: the first and last kept ones are netsleuth's
    # outer and inner layer.
    v4 = [k for k, v in enumerate(w.ips) if v == 4]
    nth = {k: n for n, k in enumerate(v4)}
    ends = sorted({0, len(w.ips) - 1}) if w.ips else []
    frag, csum = [], []
    silent = False  # an IPv4 layer tshark names but gives no field of (its header is bad)
    # An IPv4 layer tshark gives only some fields of (an id but no checksum status, its
    # header cut: randpkt frames) counts as silent too.
    given = min(len(ids), len(mfs), len(offs), len(stats))
    for k in ends:
        if w.ips[k] == 4 and nth[k] < given:
            n = nth[k]
            frag.append((int(ids[n], 16), int(mfs[n]), int(offs[n]) * 8))
            csum.append(stats[n] == "1")
        elif w.ips[k] == 4:
            silent = True
    dsap, ssap = _occ(row[6]), _occ(row[7])
    # tshark shows one "mpls" layer per label stack; netsleuth counts labels (mpls_n). The
    # labels are tshark's too where every stack is inside what the walk followed.
    labels = len(_occ(row[10])) if w.mpls == row[1].split(":").count("mpls") else w.mpls
    return {
        "link": w.link,
        "vlan": w.vlan,
        "mpls": labels,
        "llc": (int(dsap[0], 16), int(ssap[0], 16)) if w.llc and dsap and ssap else None,
        "tunnel": _tunnel_summary(w.tunnels),
        "l3": (len(w.ips), w.ips[0], w.ips[-1]) if w.ips else (0,),
        "frag4": NO_VALUE if silent else tuple(frag),
        "csum4": NO_VALUE if silent else tuple(csum),
        "l4": w.l4,
        "encap": w.beyond,
    }


def _tunnel_summary(kinds: list[str]) -> tuple[object, ...]:
    return (len(kinds), kinds[0], kinds[-1]) if kinds else (0,)


def ours(t: PacketTable, i: int) -> Frame:
    nip = int(t.nip[i])
    layers: list[Layer] = [t.outer, t.inner] if nip > 1 else [t.outer] if nip else []
    frag, csum = [], []
    for layer in layers:
        if int(layer.ver[i]) == 4:
            mf = int(layer.flags[i]) & FLAG_MF
            frag.append((int(layer.ident[i]), mf, int(layer.frag_off[i])))
            csum.append(bool(layer.csum_ok[i]))
    inner = t.inner
    l4 = OUR_L4.get(int(inner.proto[i]), "none") if int(inner.l4_off[i]) else "none"
    ntun = int(t.tunnels[i])
    kinds = (TUNNEL_NAMES[Tunnel(int(t.tunnel[i]))], TUNNEL_NAMES[Tunnel(int(t.tunnel_inner[i]))])
    dsap = int(t.llc_dsap[i])
    return {
        "link": OUR_LINK.get(L2(int(t.l2[i])), "none"),
        "vlan": int(t.vlan_n[i]),
        "mpls": int(t.mpls_n[i]),
        "llc": (dsap, int(t.llc_ssap[i])) if dsap >= 0 else None,
        "tunnel": (ntun, *kinds) if ntun else (0,),
        "l3": (nip, int(t.outer.ver[i]), int(inner.ver[i])) if nip else (0,),
        "frag4": tuple(frag),
        "csum4": tuple(csum),
        "l4": l4,
        "encap": None,
    }


def covered_linktype(lt: int) -> bool:
    """A link type netsleuth decodes (the others are named capture.unsupported_linktype)."""
    return 0 <= lt < 1 << 16 and int(REGISTRY.flat_table()[(int(NS.LINKTYPE) << 16) | lt]) != 0


@dataclass(frozen=True)
class Diff:
    capture: str
    frame: int
    layer: str
    ours: object
    theirs: object


@dataclass
class Tally:
    name: str
    frames: int = 0
    agree: int = 0
    uncovered: dict[int, int] = field(default_factory=dict)  # link type -> frames
    # link type -> frames tshark shows as bare data (no dissector for the link type: the
    # DSA tags in tshark 4.0), held to tcpdump's expected output instead (test_corpus.py)
    blind: dict[int, int] = field(default_factory=dict)
    cut: int = 0  # frames the snap length cut inside a header, where the two differ
    diffs: list[Diff] = field(default_factory=list)


def cut_by_capture(t: PacketTable, i: int) -> bool:
    """The capture's snap length ended this frame's bytes inside a header: no anomaly, the
    data running to the last captured byte (no length field ended it sooner). tshark shows
    such a header's name from the bytes before it; neither can decode it, so a difference
    there is not a disagreement about decoding."""
    end = int(t.batch.offset[i] + t.batch.caplen[i])
    clean = int(t.anom_outer[i]) == 0 and int(t.anom_inner[i]) == 0
    return bool(t.snapped[i]) and int(t.end[i]) == end and clean


def compare(captures: list[Capture], rows: list[list[str]]) -> Iterator[Tally]:
    """Per capture: the frames compared, the frames agreeing on every layer, the
    differences (one per frame and layer)."""
    it = iter(rows)
    for cap in captures:
        tally = Tally(cap.name)
        for b in cap.batches:
            t = decode(b)
            for i in range(len(b)):
                row = next(it)
                lt = int(b.linktype[i])
                if not covered_linktype(lt):
                    tally.uncovered[lt] = tally.uncovered.get(lt, 0) + 1
                    continue
                if row[1] == "data":
                    tally.blind[lt] = tally.blind.get(lt, 0) + 1
                    continue
                mine, other = ours(t, i), theirs(row)
                bad = [k for k in LAYERS if mine[k] != other[k] and other[k] is not NO_VALUE]
                if bad and cut_by_capture(t, i):
                    tally.cut += 1
                    continue
                tally.frames += 1
                frame = int(b.frame[i])
                tally.diffs += [Diff(cap.name, frame, k, mine[k], other[k]) for k in bad]
                tally.agree += not bad
        yield tally
    assert next(it, None) is None, "tshark returned more frames than were written"
