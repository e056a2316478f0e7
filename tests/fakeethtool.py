"""A network device's SIOCETHTOOL answers, given as netsleuth's ioctl call (ethtool._call):
each command's buffer is filled as net/ethtool/ioctl.c fills it, which writes the driver's
own counts whatever lengths the caller put in the buffer. A write past the end of the
caller's buffer is not made but recorded in `overflows`, so a test can assert there was none.

Layouts: include/uapi/linux/ethtool.h (struct ethtool_sset_info, ethtool_gstrings,
ethtool_stats, ethtool_rxnfc, ethtool_rxfh)."""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from dataclasses import dataclass, field

from netsleuth.sources import ethtool


@dataclass
class FakeDevice:
    stats: int = 0  # ETH_SS_STATS count; 0: the driver has no statistics
    grow_to: int | None = None  # the count once GSSET_INFO has answered (channels changed)
    rings: int | None = None  # ETHTOOL_GRXRINGS; None: not supported
    indir: list[int] = field(default_factory=list)  # empty: no ETHTOOL_GRSSH
    key: bytes = b""
    fields: dict[int, int] = field(default_factory=dict)  # flow type -> RXH_* bits
    calls: list[int] = field(default_factory=list)
    overflows: list[str] = field(default_factory=list)

    def __call__(self, sock: socket.socket, ifname: str, buf: ctypes.Array[ctypes.c_char]) -> None:
        cmd = struct.unpack_from("=I", buf.raw)[0]
        self.calls.append(cmd)
        answer = self._answer(cmd, buf.raw)
        if answer is None:
            raise ethtool.UnsupportedError(ifname)
        if len(answer) > len(buf):
            self.overflows.append(f"cmd {cmd:#x}: {len(answer)} bytes into {len(buf)}")
            answer = answer[: len(buf)]
        ctypes.memmove(buf, answer, len(answer))

    def _count(self) -> int:
        return self.grow_to if self.grow_to is not None and len(self.calls) > 1 else self.stats

    def _answer(self, cmd: int, raw: bytes) -> bytes | None:
        if cmd == ethtool.ETHTOOL_GSSET_INFO and self.stats:
            return struct.pack("=IIQI", cmd, 0, 1 << ethtool.ETH_SS_STATS, self.stats)
        if cmd == ethtool.ETHTOOL_GSTRINGS and self.stats:
            n = self._count()
            names = b"".join(f"stat_{i}".encode().ljust(32, b"\0") for i in range(n))
            return struct.pack("=III", cmd, ethtool.ETH_SS_STATS, n) + names
        if cmd == ethtool.ETHTOOL_GSTATS and self.stats:
            n = self._count()
            return struct.pack(f"=II{n}Q", cmd, n, *range(n))
        if cmd == ethtool.ETHTOOL_GRXRINGS and self.rings is not None:
            return struct.pack("=IIQ", cmd, 0, self.rings)
        if cmd == ethtool.ETHTOOL_GRXFH and self.fields:
            flow_type = struct.unpack_from("=II", raw)[1]
            return struct.pack("=IIQ", cmd, flow_type, self.fields.get(flow_type, 0))
        if cmd == ethtool.ETHTOOL_GRSSH and self.indir:
            return self._rxfh(raw)
        return None

    def _rxfh(self, raw: bytes) -> bytes:
        """ethtool_get_rxfh: sizes 0 ask for the sizes; any other sizes must be the
        device's, else EINVAL."""
        _, ctx, n_indir, n_key = struct.unpack_from("=IIII", raw)
        head = struct.pack(
            "=IIIIBB2xI", ethtool.ETHTOOL_GRSSH, ctx, len(self.indir), len(self.key), 1, 0, 0
        )
        if (n_indir, n_key) == (0, 0):
            return head
        if (n_indir, n_key) != (len(self.indir), len(self.key)):
            raise OSError(errno.EINVAL, "rxfh sizes")
        return head + struct.pack(f"={n_indir}I", *self.indir) + self.key
