"""The Toeplitz hash of RSS, exact and vectorized.

Microsoft's definition ("RSS hashing functions"): for each bit of the input, left to right,
if the bit is 1 XOR the result with the left-most 32 bits of the key, then shift the key
left by one. The input is source address, destination address, then source port and
destination port when ports are hashed, in network byte order. Because the hash is linear,
each input byte's contribution depends only on its value and position: one 256-entry table
per byte position turns hashing n tuples into one gather and XOR per input byte.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import numpy as np
from numpy.typing import NDArray

# The key of Microsoft's RSS verification suite, used by most drivers as their default.
MICROSOFT_KEY = bytes.fromhex(
    "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
)
# A key whose 16-bit halves repeat hashes both directions of a flow alike (Woo & Park,
# "Scalable TCP Session Monitoring with Symmetric Receive-side Scaling", 2012).
SYMMETRIC_KEY = bytes.fromhex("6d5a" * 20)
KEYS = {"microsoft": MICROSOFT_KEY, "symmetric": SYMMETRIC_KEY}
# A NIC model hashes every packet of a capture, and the longest input is an IPv6 address
# pair with ports: 36 bytes, so 40 key bytes (the key slides 32 bits past the last input
# bit). Real NICs carry 40 (Intel, virtio) or 52 (ice, mlx5).
MODEL_KEY_BYTES = 40


def parse_key(text: str) -> bytes:
    if text in KEYS:
        return KEYS[text]
    try:
        key = bytes.fromhex(text.replace(":", ""))
    except ValueError:
        raise ValueError(f"key {text!r} is neither microsoft, symmetric nor hex") from None
    if len(key) < 12:
        raise ValueError(f"key of {len(key)} bytes is too short (40 or 52 are usual)")
    return key


class Toeplitz:
    """Hashes inputs of up to len(key) - 4 bytes."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.max_input = len(key) - 4
        k = int.from_bytes(key, "big")
        nbits = len(key) * 8
        values = np.arange(256)
        n = self.max_input
        tables = np.zeros((n, 256), dtype=np.uint32)
        for i in range(n):
            for b in range(8):
                window = (k >> (nbits - 32 - (8 * i + b))) & 0xFFFFFFFF
                tables[i] ^= np.where(values & (0x80 >> b), np.uint32(window), np.uint32(0))
        self.tables = tables

    def hash_rows(self, data: NDArray[np.uint8]) -> NDArray[np.uint32]:
        """Hash each row of an (n, length) byte array."""
        return self.hash_columns([data[:, i] for i in range(data.shape[1])], data.shape[0])

    def hash_columns(self, columns: list[NDArray[Any]], n: int) -> NDArray[np.uint32]:
        """Hash inputs given column by column: columns[i] holds byte i of every input (any
        integer dtype, values 0..255; strided views are fine, so callers need not copy).
        A zero byte contributes nothing, so zeroed trailing ports hash like no ports."""
        if len(columns) > self.tables.shape[0]:
            raise ValueError(
                f"input of {len(columns)} bytes needs a key of {len(columns) + 4} bytes"
            )
        out = np.zeros(n, dtype=np.uint32)
        for i, col in enumerate(columns):
            out ^= self.tables[i][col]
        return out

    def hash(self, data: bytes) -> int:
        return int(self.hash_rows(np.frombuffer(data, dtype=np.uint8).reshape(1, -1))[0])


def rss_input(src: str, dst: str, sport: int | None = None, dport: int | None = None) -> bytes:
    """The byte string RSS hashes for a flow (addresses, then ports if given)."""
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version != b.version:
        raise ValueError("source and destination must be the same IP version")
    data = a.packed + b.packed
    if (sport is None) != (dport is None):
        raise ValueError("give both ports or neither")
    if sport is not None and dport is not None:
        data += sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return data
