"""ipv4.bad_checksum: the header checksum of every IPv4 header, outer and inner.

The IPv4 decoder verifies each header while it holds the bytes (IPLayer.csum_ok); this
check turns the verdicts into a finding. A bad or zero header checksum is bad even on a
packet the capturing Linux host sent (a cooked capture's PACKET_OUTGOING): Linux fills the
IPv4 header checksum in software before the packet reaches a capture point
(net/ipv4/ip_output.c: __ip_local_out calls ip_send_check); transmit checksum offload
leaves only the TCP/UDP checksums partial, and netsleuth does not judge those.
"""

from __future__ import annotations

from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import ip_layers
from netsleuth.decode.table import PacketTable
from netsleuth.model import Finding

ID = "ipv4.bad_checksum"


class IPv4Checksum:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, t: PacketTable) -> None:
        for layer_name, layer, present in ip_layers(t):
            bad = present & (layer.ver == 4) & ~layer.csum_ok
            if bad.any():
                self.tally.add(f"{ID}|{layer_name}", t.frame[bad])

    def merge(self, other: IPv4Checksum, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)

    def findings(self) -> list[Finding]:
        return self.tally.findings()
