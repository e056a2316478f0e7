"""ipv4.bad_checksum: the header checksum of every IPv4 header, outer and inner.

The IPv4 decoder verifies each header while it holds the bytes (IPLayer.csum_ok); this
check turns the verdicts into a finding.

One exception: a header checksum of exactly zero on a packet that a pcapng capture marks
outbound (epb_flags direction 2) is the sending host's NIC filling it after the capture
point (IPv4 header checksum offload, as Windows NDIS drivers do; Wireshark's "may be caused
by IP checksum offload"): ipv4.checksum_offload, info. A Linux cooked capture's outgoing
packets get no such exception: Linux fills the IPv4 header checksum in software before any
capture point (net/ipv4/ip_output.c: __ip_local_out calls ip_send_check); its transmit
offload leaves only the TCP/UDP checksums partial, which netsleuth does not judge.
"""

from __future__ import annotations

from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import ip_layers
from netsleuth.decode.table import PacketTable
from netsleuth.findings import Finding

ID = "ipv4.bad_checksum"
OFFLOAD = "ipv4.checksum_offload"
OUTBOUND = 2


class IPv4Checksum:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, t: PacketTable) -> None:
        out = t.batch.direction
        for layer_name, layer, present in ip_layers(t):
            bad = present & (layer.ver == 4) & ~layer.csum_ok
            if not bad.any():
                continue
            if out is not None and layer_name == "outer":
                offload = bad & (out == OUTBOUND) & (layer.checksum == 0)
                self.tally.add(f"{OFFLOAD}|{layer_name}", t.frame[offload])
                bad &= ~offload
            self.tally.add(f"{ID}|{layer_name}", t.frame[bad])

    def merge(self, other: IPv4Checksum, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)

    def findings(self) -> list[Finding]:
        return self.tally.findings()
