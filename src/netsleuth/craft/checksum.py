"""The Internet checksum (RFC 1071): one's complement of the one's complement sum."""

from __future__ import annotations

import sys


def inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(memoryview(data).cast("H"))  # native-order 16-bit words, summed in C
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    if sys.byteorder == "little":
        total = ((total & 0xFF) << 8) | (total >> 8)
    return (~total) & 0xFFFF
