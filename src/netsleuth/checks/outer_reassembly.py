"""Tunnels behind outer fragmentation: reassemble the outer IPv4 datagrams that carry a
tunnel and audit the inner packet of the whole datagram.

When the path MTU is below the inner packet plus the encapsulation, the outer packet is
fragmented (RFC 4459 section 3) and the inner packet spans fragments: only the reassembled
outer datagram holds it, as only the decapsulating endpoint sees it. A poison inner
packet (incident 1's zero-length fragment, say) split over outer fragments is invisible to a
per-packet decoder: an evasion. So the inner layer of a fragmented outer datagram is judged
here, from the reassembled datagram, and nowhere else (observe_all hides it from the other
checks, so nothing is counted twice), with findings attributed to the frame that completed
the datagram and evidence naming every frame that carried it. Wireshark does the same
(ip.defragment); tcpdump, Zeek's packet analysis and Suricata's decoder events do not look
inside.

The rebuilt packets go through the same check instances as every other packet (so an inner
fragment train split between plain and fragmented outer packets is one train), with their
outer layer blanked (inner_only): the outer fragments were judged already.

Kept per datagram: the fragments' bytes, bounded (MAX_OPEN datagrams, MAX_BYTES, the
audit's 30 s); what a bound drops is reported (tunnel.reassembly_bounded), never silently
judged. Overlapping datagrams are not rebuilt: stacks disagree on their bytes (the fragment
audit reports them) and modern Linux discards them. IPv4 outer datagrams only so far; a UDP
datagram is followed from its first fragment, whose ports say whether a tunnel is bound.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture import RecordBatch
from netsleuth.checks.catalogue import catalogue_finding
from netsleuth.checks.fragments import TIMEOUT_NS, Datagram, fragment_keys
from netsleuth.craft.checksum import inet_checksum
from netsleuth.decode import decode
from netsleuth.decode.registry import REGISTRY
from netsleuth.decode.table import NS, PacketTable, Tunnel
from netsleuth.model import Finding
from netsleuth.reassembly import Fragment, overlaps

MAX_OPEN = 1024
MAX_BYTES = 16 << 20
MAX_EVIDENCE = 20
BOUNDED = "tunnel.reassembly_bounded"
OUTER_FRAGMENTED = "tunnel.outer_fragmented"


def tunnel_carriers() -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(IP protocols, UDP ports) that lead into a tunnel, from the dispatch table."""
    protos, ports = np.zeros(256, np.bool_), np.zeros(1 << 16, np.bool_)
    for b in REGISTRY.bindings:
        if b.tunnel != Tunnel.NONE and b.ns == NS.IPPROTO:
            protos[b.key] = True
        elif b.tunnel != Tunnel.NONE and b.ns == NS.UDPPORT:
            ports[b.key] = True
    protos[17] = bool(ports.any())  # UDP tunnels: decided by the first fragment's ports
    return protos, ports


@dataclasses.dataclass
class Head:
    """What the first fragment adds: its link-layer bytes and IPv4 header."""

    link: bytes
    ip: bytes
    linktype: int


class TunnelReassembly:
    def __init__(self) -> None:
        self.protos, self.ports = tunnel_carriers()
        self.open: OrderedDict[bytes, Datagram] = OrderedDict()
        self.heads: dict[bytes, Head] = {}
        self.open_bytes = 0
        self.now = 0
        self.rebuilt: list[PacketTable] = []  # taken by observe_all after each batch
        self.bounded: list[int] = []  # frames of datagrams a bound dropped
        self.bounded_count = 0
        self.carried: list[int] = []  # frames of outer fragments that carried a tunnel
        self.carried_count = 0
        self.evidence: list[dict[str, object]] = []

    def observe(self, t: PacketTable, *, now: int | None = None) -> None:
        """One batch; `now` as for FragmentAudit.observe."""
        rows = self._rows(t)
        if t.n:
            self.now = max(self.now, int(t.batch.ts_ns.max()))
        if now is not None:
            self.now = max(self.now, now)
        done: list[tuple[Datagram, Head]] = []
        if rows.shape[0]:
            keys = fragment_keys(t, "outer", t.outer, rows).tobytes()
            width = len(keys) // rows.shape[0]
            for i, row in enumerate(rows.tolist()):
                dg = self._add(t, row, keys[i * width : (i + 1) * width])
                if dg is not None:
                    done.append((dg, self.heads.pop(dg.key)))
        self._expire()
        if done:
            self._judge(done)

    def advance(self, now: int) -> None:
        """A batch without fragments ended at `now`."""
        self.now = max(self.now, now)
        self._expire()

    def _rows(self, t: PacketTable) -> NDArray[np.int64]:
        """Outer IPv4 fragments of a tunnel protocol; for UDP, only once the first fragment
        named a tunnel port (later ones of a datagram being followed)."""
        o = t.outer
        cand = o.is_frag & (o.ver == 4) & self.protos[o.proto]
        udp = cand & (o.proto == 17)
        if udp.any():
            first = udp & (o.frag_off == 0)
            at = t.start + o.frag_data.astype(np.int64)
            sport = t.v.be16[np.where(first, at, 0)]
            dport = t.v.be16[np.where(first, at + 2, 0)]
            tunnel = self.ports[sport] | self.ports[dport]
            follow = bool(self.open) or bool((first & tunnel).any())
            cand &= ~udp | (first & tunnel) | (~first & follow)
        return np.flatnonzero(cand)

    def _add(self, t: PacketTable, row: int, key: bytes) -> Datagram | None:
        o = t.outer
        off, start = int(o.frag_off[row]), int(t.start[row])
        data = start + int(o.frag_data[row])
        ip_end = start + int(o.off[row]) + int(o.tot_len[row])
        cap_end = start + int(t.batch.caplen[row])
        dg = self.open.get(key)
        if dg is None:
            if int(o.proto[row]) == 17 and off != 0:
                return None  # a UDP datagram is followed from its first fragment
            dg = Datagram(key, "outer", 4, int(t.batch.ts_ns[row]))
            self.open[key] = dg
        chunk = t.batch.buf[data : max(min(ip_end, cap_end), data)].tobytes()
        dg.add(Fragment(off, chunk, bool(o.flags[row] & 1), int(t.frame[row])), off + ip_end - data)
        self.open_bytes += len(chunk)
        if off == 0:
            ip_at = start + int(o.off[row])
            buf = t.batch.buf
            link = buf[start:ip_at].tobytes()
            self.heads[key] = Head(link, buf[ip_at:data].tobytes(), int(t.batch.linktype[row]))
        if dg.complete() and key in self.heads:
            self._drop(key)
            return dg
        self._bound()
        return None

    def _drop(self, key: bytes) -> Datagram:
        dg = self.open.pop(key)
        self.open_bytes -= sum(len(f.data) for f in dg.frags)
        return dg

    def _bound(self) -> None:
        while self.open and (len(self.open) > MAX_OPEN or self.open_bytes > MAX_BYTES):
            key = next(iter(self.open))  # OrderedDict: O(1), the oldest
            dg = self._drop(key)
            self.heads.pop(key, None)
            self.bounded_count += 1
            self.bounded.extend(dg.frames[: max(100 - len(self.bounded), 0)])

    def _expire(self) -> None:
        stale = [k for k, dg in self.open.items() if dg.first_ts + TIMEOUT_NS < self.now]
        for key in stale:  # incomplete: the fragment audit reports it
            self._drop(key)
            self.heads.pop(key, None)

    # ----- the reassembled datagrams -----------------------------------------------------
    def _judge(self, done: list[tuple[Datagram, Head]]) -> None:
        by_type: dict[int, list[tuple[Datagram, bytes]]] = {}
        for dg, head in done:
            frame = _rebuild(dg, head)
            if frame is not None:
                by_type.setdefault(head.linktype, []).append((dg, frame))
        for linktype, items in by_type.items():
            batch = RecordBatch.from_packets(
                [f for _, f in items], linktype=linktype, ts_ns=[dg.first_ts for dg, _ in items]
            )
            last = np.array([max(dg.frames) for dg, _ in items], dtype=np.int64)
            table = decode(dataclasses.replace(batch, frame=last))
            self.rebuilt.append(inner_only(table))
            for k in np.flatnonzero(table.tunnels > 0).tolist():
                dg = items[k][0]
                self.carried_count += len(dg.frames)
                self.carried.extend(dg.frames[: max(100 - len(self.carried), 0)])
                if len(self.evidence) < MAX_EVIDENCE:
                    self.evidence.append({"frame": int(last[k]), "frames": sorted(dg.frames)})

    def take_rebuilt(self) -> list[PacketTable]:
        out, self.rebuilt = self.rebuilt, []
        return out

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        if self.carried_count:
            out.append(
                catalogue_finding(
                    OUTER_FRAGMENTED,
                    self.carried_count,
                    tuple(sorted(self.carried)),
                    "outer",
                    evidence={"reassembled": self.evidence},
                )
            )
        if self.bounded_count:
            out.append(catalogue_finding(BOUNDED, self.bounded_count, tuple(self.bounded), "outer"))
        return out


def inner_only(t: PacketTable) -> PacketTable:
    """Blank the outer layer of rebuilt packets (no outer IP, link layer, outer tunnel
    kind or outer anomaly), keeping the outer addresses that key inner fragment trains."""
    t.anom_outer[:] = 0
    t.outer.ver[:] = 0
    t.l2[:] = 0
    t.tunnel[:] = 0
    return t


def _rebuild(dg: Datagram, head: Head) -> bytes | None:
    """The whole outer packet: the first fragment's link layer and header (offset 0, MF
    clear, total length and checksum set for the whole, RFC 791 section 3.2), then the
    fragments' bytes in order. None when fragments overlap."""
    frags = sorted((f for f in dg.frags if f.data), key=lambda f: f.offset)
    if overlaps(frags):
        return None
    payload = b"".join(f.data for f in frags)
    hdr = bytearray(head.ip)
    total = len(hdr) + len(payload)
    if total > 0xFFFF:
        return None  # too_large: the audit reports it; no IPv4 packet can hold it
    hdr[2:4] = total.to_bytes(2, "big")
    hdr[6:8] = (int.from_bytes(hdr[6:8], "big") & 0x4000).to_bytes(2, "big")  # keep DF
    hdr[10:12] = b"\0\0"
    hdr[10:12] = inet_checksum(bytes(hdr)).to_bytes(2, "big")
    return head.link + bytes(hdr) + payload
