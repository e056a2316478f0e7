"""tcp.bad_flags: flag combinations no conforming stack sends (RFC 9293 section 3.1).

SYN+FIN, SYN+RST, FIN+RST, no flags at all (null scan), FIN/PSH/URG without ACK (Xmas and
FIN scans): Snort 116:420-423 and Suricata's stream events name the same combinations.
"""

from __future__ import annotations

import numpy as np

from netsleuth.checks.frames import FrameTally
from netsleuth.checks.layers import ip_layers
from netsleuth.decode.table import PacketTable
from netsleuth.findings import Finding

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ID = "tcp.bad_flags"


def _both(f: np.ndarray, a: int, b: int) -> np.ndarray:
    out: np.ndarray = (f & (a | b)) == (a | b)
    return out


def bad_flags(flags: np.ndarray) -> np.ndarray:
    f = flags & 0x3F
    scan = ((f & (FIN | PSH | URG)) != 0) & ((f & ACK) == 0) & ((f & SYN) == 0)
    out: np.ndarray = _both(f, SYN, FIN) | _both(f, SYN, RST) | _both(f, FIN, RST) | (f == 0) | scan
    return out


class TCPFlags:
    def __init__(self) -> None:
        self.tally = FrameTally()

    def observe(self, t: PacketTable) -> None:
        for layer_name, layer, present in ip_layers(t):
            tcp = present & (layer.proto == 6) & (layer.l4_off != 0)
            if tcp.any():
                hit = tcp & bad_flags(layer.tcp_flags)
                self.tally.add(f"{ID}|{layer_name}", t.frame[hit])

    def merge(self, other: TCPFlags, frame_offset: int = 0) -> None:
        self.tally.merge(other.tally, frame_offset)

    def findings(self) -> list[Finding]:
        return self.tally.findings()
