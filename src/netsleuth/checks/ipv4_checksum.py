"""ipv4.bad_checksum: the header checksum of every IPv4 header, outer and inner.

The IPv4 decoder verifies each header while it holds the bytes (IPLayer.csum_ok); this
check turns the verdicts into a finding. A zero checksum on a packet the capturing host
sent is transmit checksum offload (the NIC fills it after the capture point), reported as
ipv4.checksum_offload (info), not as a bad checksum.
"""

from __future__ import annotations

from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import ip_layers, sent_by_capturing_host
from netsleuth.decode.table import PacketTable
from netsleuth.model import Finding

ID = "ipv4.bad_checksum"
OFFLOAD = "ipv4.checksum_offload"


class IPv4Checksum:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, t: PacketTable) -> None:
        sent = None
        for layer_name, layer, present in ip_layers(t):
            bad = present & (layer.ver == 4) & ~layer.csum_ok
            if not bad.any():
                continue
            if sent is None:
                sent = sent_by_capturing_host(t)
            offload = bad & sent & (layer.checksum == 0)
            self.tally.add(f"{OFFLOAD}|{layer_name}", t.frame[offload])
            self.tally.add(f"{ID}|{layer_name}", t.frame[bad & ~offload])

    def merge(self, other: IPv4Checksum, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)

    def findings(self) -> list[Finding]:
        return self.tally.findings()
