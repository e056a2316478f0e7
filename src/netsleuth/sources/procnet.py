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
from netsleuth.sources.safefile import open_regular

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


# A socket line is 150 bytes (tcp6) and a host has at most a few million sockets: beyond
# these, a --root file is not a socket table, and reading on would only cost time.
MAX_LINE = 4096
MAX_BYTES = 1 << 30


def read_listeners(root: Path) -> tuple[list[Listener], list[str]]:
    """LISTEN sockets of proc/net/tcp and tcp6 under root, and notes on what was absent.
    Read line by line, only regular files (sources.safefile): memory holds the listeners,
    not the table (a --root file may be /dev/zero or a FIFO)."""
    found, notes = [], []
    for name in ("tcp", "tcp6"):
        path = root / "proc" / "net" / name
        try:
            found += _listeners(str(path))
        except FileNotFoundError:
            notes.append(f"{path} is absent: skipped")
        except OSError as err:
            raise InputError(str(path), err.strerror or str(err)) from err
    return found, notes


def _listeners(path: str) -> list[Listener]:
    out: list[Listener] = []
    total = 0
    with open_regular(path) as fh:
        fh.readline(MAX_LINE)  # the header
        while total < MAX_BYTES:
            line = fh.readline(MAX_LINE)
            if not line:
                break
            total += len(line)
            if b" 0A " in line:  # TCP_LISTEN: the rest is not parsed at all
                out += parse_tcp("\n" + line.decode("ascii", "replace"))
    if total >= MAX_BYTES:
        raise InputError(path, f"more than {MAX_BYTES >> 30} GiB: not a socket table")
    return out
