"""ipv4.bad_checksum: the header checksum of every IPv4 header, outer and inner.

The IPv4 decoder verifies each header while it holds the bytes (IPLayer.csum_ok); this
check turns the verdicts into a finding.

One exception: a header checksum of exactly zero where the sending host's NIC may finish
it after the capture point (IPv4 header checksum offload, as Windows NDIS drivers do by
default; Wireshark's "may be caused by IP checksum offload", and it checks no IPv4
checksum unless asked): ipv4.checksum_offload, info, naming the frames. That is:
- a packet a pcapng capture marks outbound (epb_flags direction 2);
- one whose total length field is 0 as well: large send offload leaves both to the NIC,
  which cuts the frame into segments and writes each one's length and checksum (tcpdump
  prints "[was 0, presumed TSO]"; its corpus's ipv4_tcp_http_xml_tso.pcap is a Windows
  host's such frame). Linux's BIG TCP also writes a length of 0, with a right checksum;
- one whose direction the capture does not say (a pcap file, a pcapng packet without
  epb_flags): a Windows capture of its own traffic (Npcap gives no direction) holds a zero
  in every packet it sent, and a corrupt header is zero once in 65,536. A capture taken on
  the wire or at the receiver would make these real: the finding says so.
A zero the capture marks inbound is bad: pcapng's epb_flags, PKTAP's direction flags, a
Solaris ipnet inbound hook. So is one a Linux host captured (a Linux cooked capture, NFLOG,
`scan --live`'s packet socket, a pcapng section whose shb_os names Linux, as dumpcap writes
it there: RecordBatch.linux):
Linux fills the IPv4 header checksum in software before any capture point
(net/ipv4/ip_output.c: __ip_local_out calls ip_send_check); its transmit offload leaves
only the TCP/UDP checksums partial, which netsleuth does not judge. And so is any zero in
an ERF file (RecordBatch.wire): a DAG card captures the wire, past the sender's NIC, where
no offload is pending and a frame whose length field is 0 was sent so.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import ip_layers
from netsleuth.decode.table import L2, WAY_IN, IPLayer, PacketTable
from netsleuth.findings import Finding

ID = "ipv4.bad_checksum"
OFFLOAD = "ipv4.checksum_offload"


class IPv4Checksum:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, t: PacketTable) -> None:
        for layer_name, layer, present in ip_layers(t):
            bad = present & (layer.ver == 4) & ~layer.csum_ok
            if not bad.any():
                continue
            if layer_name == "outer":
                offload = _offloaded(t, layer, bad & (layer.checksum == 0))
                self.tally.add(f"{OFFLOAD}|{layer_name}", t.frame[offload])
                bad &= ~offload
            self.tally.add(f"{ID}|{layer_name}", t.frame[bad])

    def merge(self, other: IPv4Checksum, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)

    def findings(self) -> list[Finding]:
        return self.tally.findings()


def _offloaded(t: PacketTable, layer: IPLayer, zero: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Which of the `zero`-checksum headers the sender's NIC may finish (module docstring):
    a total length field of 0 (the decoder took the frame's length for it), or any other
    not marked inbound and not captured by a Linux host; none captured on the wire."""
    if t.batch.wire:
        return np.zeros(zero.shape[0], dtype=np.bool_)
    rows = np.flatnonzero(zero)
    lso = t.v.be16[t.start[rows] + layer.off[rows].astype(np.int64) + 2] == 0
    out = t.batch.direction
    way = np.zeros(rows.shape[0], np.uint8) if out is None else out[rows]
    l2 = t.l2[rows]
    linux = (l2 == L2.SLL) | (l2 == L2.SLL2) | (l2 == L2.NFLOG)
    if t.batch.linux is not None:
        linux |= t.batch.linux[rows]
    inbound = (way == WAY_IN) | (t.way[rows] == WAY_IN)  # the capture's word, or the link's
    maybe = lso | (~linux & ~inbound)
    done = np.zeros(zero.shape[0], dtype=np.bool_)
    done[rows[maybe]] = True
    return done
