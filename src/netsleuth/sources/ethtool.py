"""NIC counters and ring sizes through the SIOCETHTOOL ioctl (what `ethtool -S` and
`ethtool -g` print), via fcntl.ioctl; the results are rendered in ethtool's own text format
so a bundle holds what `ethtool -S DEV` would have shown.

Structures (include/uapi/linux/ethtool.h): struct ifreq is a 16-byte name and a pointer
(ifr_data) to the command buffer; every command buffer starts with its u32 cmd.
  ETHTOOL_GSSET_INFO 0x37: {u32 cmd, u32 reserved, u64 sset_mask, u32 data[]}
  ETHTOOL_GSTRINGS   0x1b: {u32 cmd, u32 string_set, u32 len, u8 data[len * 32]}
  ETHTOOL_GSTATS     0x1d: {u32 cmd, u32 n_stats, u64 data[n_stats]}
  ETHTOOL_GRINGPARAM 0x10: {u32 cmd, rx_max, rx_mini_max, rx_jumbo_max, tx_max, rx, rx_mini,
                            rx_jumbo, tx} (all u32)
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct
import threading
from dataclasses import dataclass, field

SIOCETHTOOL = 0x8946
ETHTOOL_GRINGPARAM = 0x10
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSTATS = 0x1D
ETHTOOL_GSSET_INFO = 0x37
ETH_SS_STATS = 1
ETH_GSTRING_LEN = 32
MAX_STATS = 1 << 16  # a sanity bound; mlx5 with many channels has a few thousand


class UnsupportedError(Exception):
    """The device does not implement this ethtool operation (EOPNOTSUPP)."""


class TooManyStatsError(Exception):
    """The device reports more statistics than netsleuth accepts. The buffer cannot simply be
    made shorter: ETHTOOL_GSTRINGS and ETHTOOL_GSTATS copy the driver's own count of entries
    whatever length the caller wrote (net/ethtool/ioctl.c, ethtool_get_strings and
    ethtool_get_stats set len/n_stats from get_sset_count), so a short buffer is overwritten
    past its end. Such a device is refused and named instead."""

    def __init__(self, ifname: str, count: int) -> None:
        super().__init__(
            f"{ifname} reports {count} statistics, more than the {MAX_STATS} netsleuth accepts"
        )
        self.ifname = ifname
        self.count = count


class CountChangedError(Exception):
    """The driver's count of statistics changed between ETHTOOL_GSSET_INFO and the read
    (channels reconfigured meanwhile): the answer does not match the buffer asked for."""

    def __init__(self, ifname: str, asked: int, got: int) -> None:
        super().__init__(
            f"{ifname}: the number of statistics changed from {asked} to {got} while reading"
        )


def ifreq(ifname: str, buf: ctypes.Array[ctypes.c_char]) -> bytes:
    name = ifname.encode()
    if len(name) >= 16:
        raise ValueError(f"interface name {ifname!r} is too long")
    return struct.pack("16sP", name, ctypes.addressof(buf)).ljust(40, b"\0")


def _call(sock: socket.socket, ifname: str, buf: ctypes.Array[ctypes.c_char]) -> None:
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq(ifname, buf))
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP):
            raise UnsupportedError(ifname) from None
        raise


# Pure encoders/decoders (tested on recorded buffers) -------------------------------------


def encode_sset_info(sset: int = ETH_SS_STATS) -> bytes:
    return struct.pack("=IIQI", ETHTOOL_GSSET_INFO, 0, 1 << sset, 0)


def decode_sset_info(raw: bytes) -> int | None:
    _, _, mask, count = struct.unpack_from("=IIQI", raw)
    return count if mask else None


def encode_gstrings(n: int, sset: int = ETH_SS_STATS) -> bytes:
    """A request for n strings, with room for them."""
    return struct.pack("=III", ETHTOOL_GSTRINGS, sset, n) + bytes(n * ETH_GSTRING_LEN)


def decode_gstrings(raw: bytes) -> list[str]:
    _, _, n = struct.unpack_from("=III", raw)
    out = []
    for i in range(n):
        chunk = raw[12 + i * ETH_GSTRING_LEN : 12 + (i + 1) * ETH_GSTRING_LEN]
        out.append(chunk.split(b"\0", 1)[0].decode("ascii", "replace"))
    return out


def encode_gstats(n: int) -> bytes:
    """A request for n values, with room for them."""
    return struct.pack("=II", ETHTOOL_GSTATS, n) + bytes(n * 8)


def decode_gstats(raw: bytes) -> list[int]:
    _, n = struct.unpack_from("=II", raw)
    return list(struct.unpack_from(f"={n}Q", raw, 8))


def encode_ringparam() -> bytes:
    return struct.pack("=9I", ETHTOOL_GRINGPARAM, *([0] * 8))


def decode_ringparam(raw: bytes) -> dict[str, int]:
    v = struct.unpack_from("=9I", raw)
    keys = ("rx_max", "rx_mini_max", "rx_jumbo_max", "tx_max", "rx", "rx_mini", "rx_jumbo", "tx")
    return dict(zip(keys, v[1:], strict=True))


def stats_text(names: list[str], values: list[int]) -> str:
    """`ethtool -S` output."""
    lines = ["NIC statistics:"]
    lines += [f"     {n}: {v}" for n, v in zip(names, values, strict=True)]
    return "\n".join(lines) + "\n"


def ring_text(ifname: str, r: dict[str, int]) -> str:
    """`ethtool -g` output (n/a for a zero maximum, as ethtool prints it)."""

    def v(key: str) -> str:
        return "n/a" if r[key + "_max"] == 0 else str(r[key])

    def m(key: str) -> str:
        return "n/a" if r[key] == 0 else str(r[key])

    return (
        f"Ring parameters for {ifname}:\nPre-set maximums:\n"
        f"RX:\t\t{m('rx_max')}\nRX Mini:\t{m('rx_mini_max')}\nRX Jumbo:\t{m('rx_jumbo_max')}\n"
        f"TX:\t\t{m('tx_max')}\nCurrent hardware settings:\n"
        f"RX:\t\t{v('rx')}\nRX Mini:\t{v('rx_mini')}\nRX Jumbo:\t{v('rx_jumbo')}\n"
        f"TX:\t\t{v('tx')}\n"
    )


# Live calls ------------------------------------------------------------------------------


def _buffer(data: bytes) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(data, len(data))


def read_stats(sock: socket.socket, ifname: str) -> tuple[list[str], list[int]]:
    """Names and values of the device's statistics. Refuses (TooManyStatsError) a count
    above MAX_STATS rather than asking for fewer: the kernel writes its full count. A count
    that changed between the calls (channels reconfigured meanwhile) is read once more,
    then named (CountChangedError)."""
    try:
        return _read_stats(sock, ifname)
    except CountChangedError:
        return _read_stats(sock, ifname)


def _read_stats(sock: socket.socket, ifname: str) -> tuple[list[str], list[int]]:
    buf = _buffer(encode_sset_info())
    _call(sock, ifname, buf)
    n = decode_sset_info(buf.raw)
    if not n:
        raise UnsupportedError(ifname)
    if n > MAX_STATS:
        raise TooManyStatsError(ifname, n)
    # Room for MAX_STATS entries, not n: the driver's count may grow between the calls,
    # and the kernel then writes its new count whatever this buffer says.
    sbuf = _request("strings", encode_gstrings(n), 12 + MAX_STATS * ETH_GSTRING_LEN)
    _call(sock, ifname, sbuf)
    _expect_count(ifname, n, struct.unpack_from("=III", sbuf)[2])
    vbuf = _request("values", encode_gstats(n), 8 + MAX_STATS * 8)
    _call(sock, ifname, vbuf)
    _expect_count(ifname, n, struct.unpack_from("=II", vbuf)[1])
    names = decode_gstrings(ctypes.string_at(sbuf, 12 + n * ETH_GSTRING_LEN))
    return names, decode_gstats(ctypes.string_at(vbuf, 8 + n * 8))


_ROOM = threading.local()


def _request(name: str, request: bytes, size: int) -> ctypes.Array[ctypes.c_char]:
    """`request` at the start of a `size`-byte buffer, the same buffer every time in this
    thread: allocating and zeroing 2.5 MiB and 0.5 MiB a device a reading, and copying
    them out whole (`.raw`), cost `watch` 7 of its 10 ms a sample."""
    if len(request) > size:
        raise ValueError(f"an ioctl request of {len(request)} bytes in a {size}-byte buffer")
    buf: ctypes.Array[ctypes.c_char] | None = getattr(_ROOM, name, None)
    if buf is None or len(buf) != size:
        buf = ctypes.create_string_buffer(size)
        setattr(_ROOM, name, buf)
    ctypes.memmove(buf, request, len(request))
    return buf


def _expect_count(ifname: str, asked: int, got: int) -> None:
    if got != asked:
        raise CountChangedError(ifname, asked, got)


def read_ring(sock: socket.socket, ifname: str) -> dict[str, int]:
    buf = _buffer(encode_ringparam())
    _call(sock, ifname, buf)
    return decode_ringparam(buf.raw)


def ethtool_texts(devices: list[str]) -> tuple[dict[str, str], list[str]]:
    """{"ethtool/<dev>/statistics": text, "ethtool/<dev>/ring": text} for each device
    that answers, and notes for those that do not."""
    files: dict[str, str] = {}
    notes: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for dev in devices:
            try:
                names, values = read_stats(sock, dev)
                files[f"ethtool/{dev}/statistics"] = stats_text(names, values)
            except UnsupportedError:
                pass  # lo, tunnels, bridges: no NIC statistics
            except (TooManyStatsError, CountChangedError) as err:
                notes.append(f"ethtool -S {dev}: {err}, skipped")
            except OSError as err:
                notes.append(f"ethtool -S {dev}: {err.strerror}, skipped")
            try:
                files[f"ethtool/{dev}/ring"] = ring_text(dev, read_ring(sock, dev))
            except UnsupportedError:
                pass
            except OSError as err:
                notes.append(f"ethtool -g {dev}: {err.strerror}, skipped")
    return files, notes


# RSS configuration (steer --from-host) ---------------------------------------------------
#  ETHTOOL_GRSSH      0x46: struct ethtool_rxfh {u32 cmd, rss_context, indir_size, key_size;
#                          u8 hfunc, input_xfrm, rsvd8[2]; u32 rsvd32; u32 rss_config[]}:
#                          called once with sizes 0 to learn them, then with room for the
#                          indirection table (indir_size u32) followed by the key bytes.
#  ETHTOOL_GRXFHINDIR 0x38: struct ethtool_rxfh_indir {u32 cmd, size; u32 ring_index[]}
#                          (older drivers without GRSSH), same two-step call.
#  ETHTOOL_GRXFH      0x29 / ETHTOOL_GRXRINGS 0x2d: struct ethtool_rxnfc {u32 cmd, flow_type;
#                          u64 data; ...}: the hashed fields of a flow type (RXH_* bits) and
#                          the number of RX rings.
ETHTOOL_GRXFH = 0x29
ETHTOOL_GRXRINGS = 0x2D
ETHTOOL_GRXFHINDIR = 0x38
ETHTOOL_GRSSH = 0x46
RXNFC_SIZE = 256  # >= sizeof(struct ethtool_rxnfc) (192 on 64-bit)
FLOW_TYPES = {"tcp4": 0x01, "udp4": 0x02, "tcp6": 0x05, "udp6": 0x06}
RXH_L4_B_0_1, RXH_L4_B_2_3 = 0x40, 0x80  # the port halves (include/uapi/linux/ethtool.h)
ETH_RSS_HASH_TOP = 1  # Toeplitz; XOR = 2, CRC32 = 4
MAX_INDIR = 1 << 16
MAX_KEY = 1024


class NoRssError(Exception):
    """The device's driver exposes no RSS configuration."""


def encode_rxfh(indir_size: int = 0, key_size: int = 0) -> bytes:
    head = struct.pack("=IIIIBB2xI", ETHTOOL_GRSSH, 0, indir_size, key_size, 0, 0, 0)
    return head + bytes(indir_size * 4 + key_size)


def decode_rxfh(raw: bytes) -> tuple[int, int, int, list[int], bytes]:
    """(indir_size, key_size, hfunc, table, key) from a filled ethtool_rxfh buffer."""
    _, _, n_indir, n_key, hfunc, _ = struct.unpack_from("=IIIIBB2xI", raw)[:6]
    body = raw[24:]
    have = len(body) >= n_indir * 4 + n_key
    table = list(struct.unpack_from(f"={n_indir}I", body)) if have else []
    key = bytes(body[n_indir * 4 : n_indir * 4 + n_key]) if have else b""
    return n_indir, n_key, hfunc, table, key


def encode_rxfh_indir(size: int = 0) -> bytes:
    return struct.pack("=II", ETHTOOL_GRXFHINDIR, size) + bytes(size * 4)


def decode_rxfh_indir(raw: bytes) -> tuple[int, list[int]]:
    _, size = struct.unpack_from("=II", raw)
    have = len(raw) >= 8 + size * 4
    return size, list(struct.unpack_from(f"={size}I", raw, 8)) if have else []


def encode_rxnfc(cmd: int, flow_type: int = 0) -> bytes:
    return struct.pack("=IIQ", cmd, flow_type, 0).ljust(RXNFC_SIZE, b"\0")


def decode_rxnfc_data(raw: bytes) -> int:
    return int(struct.unpack_from("=IIQ", raw)[2])


def l4_flow_types(fields: dict[str, int]) -> frozenset[str]:
    """Flow types whose hash includes both port halves (`ethtool -n DEV rx-flow-hash` sdfn)."""
    both = RXH_L4_B_0_1 | RXH_L4_B_2_3
    return frozenset(ft for ft, bits in fields.items() if bits & both == both)


def _rxfh_two_step(sock: socket.socket, ifname: str) -> tuple[int, list[int], bytes]:
    buf = _buffer(encode_rxfh())
    _call(sock, ifname, buf)
    n_indir, n_key, _, _, _ = decode_rxfh(buf.raw)
    if n_indir > MAX_INDIR or n_key > MAX_KEY:
        raise OSError(errno.EINVAL, f"implausible RSS sizes {n_indir}/{n_key}")
    buf = _buffer(encode_rxfh(n_indir, n_key))
    _call(sock, ifname, buf)
    _, _, hfunc, table, key = decode_rxfh(buf.raw)
    return hfunc, table, key


@dataclass
class HostRss:
    device: str
    rings: int | None = None
    hfunc: int | None = None
    indir: list[int] = field(default_factory=list)
    key: bytes = b""
    fields: dict[str, int] = field(default_factory=dict)  # flow type -> RXH_* bits
    notes: list[str] = field(default_factory=list)


def read_rss(ifname: str) -> HostRss:
    """The NIC's RSS setup: rings, key, indirection table, hash function and hashed fields.
    Raises NoRssError when the driver implements none of it (veth, lo, most virtual
    devices)."""
    out = HostRss(ifname)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            buf = _buffer(encode_rxnfc(ETHTOOL_GRXRINGS))
            _call(sock, ifname, buf)
            out.rings = decode_rxnfc_data(buf.raw)
        except UnsupportedError:
            pass
        try:
            out.hfunc, out.indir, out.key = _rxfh_two_step(sock, ifname)
        except UnsupportedError:
            try:
                buf = _buffer(encode_rxfh_indir())
                _call(sock, ifname, buf)
                size, _ = decode_rxfh_indir(buf.raw)
                if size > MAX_INDIR:
                    raise OSError(errno.EINVAL, f"implausible RSS table size {size}")
                buf = _buffer(encode_rxfh_indir(size))
                _call(sock, ifname, buf)
                out.indir = decode_rxfh_indir(buf.raw)[1]
                out.notes.append("no ETHTOOL_GRSSH: the key is unknown (the default is used)")
            except UnsupportedError:
                if out.rings is None:
                    raise NoRssError(ifname) from None
        for name, ft in FLOW_TYPES.items():
            try:
                buf = _buffer(encode_rxnfc(ETHTOOL_GRXFH, ft))
                _call(sock, ifname, buf)
                out.fields[name] = decode_rxnfc_data(buf.raw)
            except UnsupportedError:
                continue
    return out
