"""/proc/net/tcp and /proc/net/tcp6: the listening sockets.

Format (net/ipv4/tcp_ipv4.c get_tcp4_sock, net/ipv6/tcp_ipv6.c get_tcp6_sock): after a
header line, one line per socket: "sl local_address rem_address st ...". An IPv4 address is
printed as %08X of the 32-bit word as it lies in memory (so reversed on little-endian hosts),
the port as %04X of its value; IPv6 prints four such words. st 0A is TCP_LISTEN.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from netsleuth.errors import InputError

TCP_LISTEN = "0A"


@dataclass(frozen=True, slots=True)
class Listener:
    address: str
    port: int
    inode: int


def _address(hexaddr: str, byteorder: str) -> str:
    words = [bytes.fromhex(hexaddr[i : i + 8]) for i in range(0, len(hexaddr), 8)]
    raw = b"".join(w[::-1] if byteorder == "little" else w for w in words)
    return str(ipaddress.ip_address(raw))


def parse_tcp(text: str, *, byteorder: str = sys.byteorder) -> list[Listener]:
    """Listening sockets from the text of /proc/net/tcp or tcp6 (any number of them)."""
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != TCP_LISTEN:
            continue
        addr, _, port = parts[1].partition(":")
        try:
            out.append(Listener(_address(addr, byteorder), int(port, 16), int(parts[9])))
        except ValueError:
            continue  # a line we do not understand is skipped, not fatal
    return out


def read_listeners(root: Path) -> tuple[list[Listener], list[str]]:
    """LISTEN sockets of proc/net/tcp and tcp6 under root, and notes on what was absent."""
    found, notes = [], []
    for name in ("tcp", "tcp6"):
        path = root / "proc" / "net" / name
        try:
            found += parse_tcp(path.read_text())
        except FileNotFoundError:
            notes.append(f"{path} is absent: skipped")
        except OSError as err:
            raise InputError(str(path), err.strerror or str(err)) from err
    return found, notes
