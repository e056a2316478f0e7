"""Frames from a network interface through an AF_PACKET TPACKET_V3 ring, as RecordBatches.

The kernel writes frames into blocks of a memory-mapped ring (packet(7),
Documentation/networking/packet_mmap.rst); a block is handed to user space when it is
full or its retire timer fires. Each ready block is copied once, frame by frame, into the
batch buffer by the C helper (_ring.c, VLAN tags restored from tp_vlan_tci), then handed
back to the kernel, so no per-packet Python runs and the ring is freed as fast as it is read.

Set-up order matters: the socket is created with protocol 0 (it receives nothing), gets
its ring and filter, and only then is bound to the interface with ETH_P_ALL, so no frame
arrives unfiltered or before the ring exists. Everything it creates (socket, ring mapping,
promiscuous membership, fanout membership) goes when the reader is closed, which the
context manager does on every exit path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import select
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from netsleuth.capture import _ring
from netsleuth.capture.batch import INBOUND, OUTBOUND, PAD, RecordBatch
from netsleuth.errors import FacilityError, InputError

PACKET_OUTGOING = 4  # sll_pkttype (include/uapi/linux/if_packet.h)

# include/uapi/linux/if_packet.h, include/uapi/linux/if_ether.h, asm-generic/socket.h
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP = 1, 2
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
TPACKET_V3 = 2
PACKET_MR_PROMISC = 1
PACKET_FANOUT_HASH = 0
TP_STATUS_USER = 1
ETH_P_ALL = 3
SO_ATTACH_FILTER = 26
SIOCGIFHWADDR = 0x8927  # include/uapi/linux/sockios.h
# The interface's hardware type (include/uapi/linux/if_arp.h) -> the pcap link type of what
# an AF_PACKET SOCK_RAW socket reads there, as libpcap maps them (pcap-linux.c
# map_arphrd_to_dlt): Ethernet (and the loopback device, which has Ethernet headers too);
# ARPHRD_NONE, a device with no link header (tun, WireGuard): the IP packet itself; and
# Wi-Fi in monitor mode, bare or behind radiotap.
# ARPHRD_RAWIP (rmnet, qmi_wwan), ARPHRD_TUNNEL (ipip) and ARPHRD_SIT are raw IP too.
ARPHRD_LINKTYPES = {1: 1, 772: 1, 0xFFFE: 101, 519: 101, 768: 101, 776: 101, 801: 105, 803: 127}

# struct tpacket_req3: block_size, block_nr, frame_size, frame_nr, retire_blk_tov,
# sizeof_priv, feature_req_word (all u32).
REQ3 = struct.Struct("=7I")
# struct tpacket_stats_v3: tp_packets, tp_drops, tp_freeze_q_cnt (u32).
STATS3 = struct.Struct("=3I")
# struct packet_mreq: mr_ifindex (int), mr_type, mr_alen (u16), mr_address[8].
MREQ = struct.Struct("=iHH8s")
FRAME_SIZE = 2048  # only checked by the kernel for V3 (frames are variable-size)
MAX_BLOCKS_PER_BATCH = 8  # 8 MiB with the default block: one decode per few thousand frames

BpfProgram = Sequence[tuple[int, int, int, int]]  # (code, jt, jf, k) per instruction


@dataclass(frozen=True, slots=True)
class RingConfig:
    block_size: int = 1 << 20
    blocks: int = 64
    retire_ms: int = 20  # a partly filled block is handed over after this long
    promisc: bool = False
    fanout_group: int | None = None  # PACKET_FANOUT_HASH group id shared by workers
    bpf: BpfProgram | None = None


@dataclass
class KernelStats:
    """PACKET_STATISTICS summed over the reads (the kernel resets them at each read).
    `packets` counts every frame that reached the socket, the dropped ones included."""

    packets: int = 0
    drops: int = 0
    freeze_q: int = 0

    def add(self, other: KernelStats) -> None:
        self.packets += other.packets
        self.drops += other.drops
        self.freeze_q += other.freeze_q

    def to_json(self) -> dict[str, int]:
        return {"packets": self.packets, "drops": self.drops, "freeze_q_cnt": self.freeze_q}


class InterfaceDownError(InputError):
    """The interface went down or away while we read it."""


class RingReader:
    def __init__(self, ifname: str, config: RingConfig = RingConfig()) -> None:
        _check_config(config)
        self.ifname = ifname
        self.config = config
        self.totals = KernelStats()
        self.frames = 0
        self._cur = 0
        self._ring: mmap.mmap | None = None
        self._promisc = False
        try:
            self.ifindex = socket.if_nametoindex(ifname)
        except OSError:
            raise InputError(ifname, "no such network interface (see `ip link`)") from None
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise FacilityError(
                "scan --live needs root (CAP_NET_RAW) to open an AF_PACKET socket: run it with sudo"
            ) from None
        try:
            self._open()
        except OSError as err:
            # The interface vanished between the checks, or the kernel refused an option
            # (a fanout group id held by another process with another mode: EINVAL).
            self.close()
            raise InputError(ifname, f"cannot capture here: {err.strerror or err}") from None
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        cfg = self.config
        self.linktype = _linktype(self.sock, self.ifname)
        self.sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        frames = cfg.block_size // FRAME_SIZE * cfg.blocks
        req = REQ3.pack(cfg.block_size, cfg.blocks, FRAME_SIZE, frames, cfg.retire_ms, 0, 0)
        try:
            self.sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        except OSError as err:
            raise FacilityError(
                f"the kernel refused a {cfg.blocks} x {cfg.block_size} byte TPACKET_V3 ring "
                f"({err.strerror}): try fewer or smaller blocks"
            ) from None
        size = cfg.block_size * cfg.blocks
        self._ring = mmap.mmap(self.sock.fileno(), size, mmap.MAP_SHARED)
        self._poller = select.poll()
        self._poller.register(self.sock, select.POLLIN | select.POLLERR)
        if cfg.bpf is not None:
            attach_filter(self.sock, cfg.bpf)
        self.sock.bind((self.ifname, ETH_P_ALL))
        if cfg.promisc:
            self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, self._mreq())
            self._promisc = True
        if cfg.fanout_group is not None:
            # Hash mode: one flow, and every fragment of one IP datagram, on one socket
            # (the flow dissector hashes fragments on addresses and protocol only, kernel
            # commit 62230715fd24, Linux 4.20). No PACKET_FANOUT_FLAG_DEFRAG: it would
            # reassemble the fragments before we see them and hide the evidence.
            arg = (cfg.fanout_group & 0xFFFF) | (PACKET_FANOUT_HASH << 16)
            self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, arg)

    def _mreq(self) -> bytes:
        return MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b"")

    def batches(self, stop: Callable[[], bool], *, timeout_ms: int = 100) -> Iterator[RecordBatch]:
        """Batches of the frames of ready blocks until stop() says so (asked at least
        every timeout_ms)."""
        while not stop():
            batch = self.read_ready()
            if batch is None:
                self.wait(timeout_ms)
            else:
                yield batch

    def wait(self, timeout_ms: int) -> None:
        """Until a block is ready or timeout_ms passed; raises if the socket failed
        (the interface went down or away)."""
        for _fd, ev in self._poller.poll(timeout_ms):
            if ev & select.POLLERR:
                self._raise_socket_error()

    def read_ready(self) -> RecordBatch | None:
        """One batch from the blocks the kernel has handed over (at most
        MAX_BLOCKS_PER_BATCH), each given back right after its copy; None if none is."""
        ring = self._ring
        assert ring is not None
        bs, nblocks = self.config.block_size, self.config.blocks
        ready: list[tuple[int, int, int]] = []
        cur = self._cur
        while len(ready) < MAX_BLOCKS_PER_BATCH:
            status, num, blen = _ring.block_info(ring, cur * bs)
            if not status & TP_STATUS_USER:
                break
            ready.append((cur * bs, num, blen))
            cur = (cur + 1) % nblocks
            if cur == self._cur:
                break
        if not ready:
            return None
        self._cur = cur
        n = sum(r[1] for r in ready)
        # Every frame grows by at most one restored VLAN tag (4 bytes). Not zeroed first
        # (a 4 MiB memset a block was 6% of a worker's time, perf): the frames fill it
        # from the start, and what follows them, the PAD bytes included, is zeroed below.
        buf = np.empty(sum(min(r[2], bs) for r in ready) + 4 * n + PAD, dtype=np.uint8)
        ethernet = self.linktype == 1
        cols = [np.empty(n, dtype=np.int64) for _ in range(5)]
        pos = row = 0
        try:
            for off, _num, _blen in ready:
                offset, caplen, wirelen, ts_ns, pkttype = cols
                got, pos = _ring.walk_block(
                    ring,
                    off,
                    bs,
                    buf[: buf.shape[0] - PAD],
                    pos,
                    row,
                    offset,
                    caplen,
                    wirelen,
                    ts_ns,
                    pkttype,
                    ethernet,
                )
                row += got
        except ValueError as err:  # the C helper refused a block: say so, do not guess
            raise InputError(self.ifname, f"unreadable ring block: {err}") from None
        finally:
            for off, _num, _blen in ready:
                _ring.release_block(ring, off)
        buf[pos:] = 0
        first = self.frames + 1
        self.frames += row
        return RecordBatch(
            buf=buf,
            offset=cols[0][:row],
            caplen=cols[1][:row],
            wirelen=cols[2][:row],
            ts_ns=cols[3][:row],
            linktype=np.full(row, self.linktype, dtype=np.int32),
            frame=np.arange(first, first + row, dtype=np.int64),
            # The socket sees what the host sends too (sll_pkttype PACKET_OUTGOING): in
            # pcapng's terms, as a file's epb_flags would say it (RecordBatch.direction).
            direction=np.where(cols[4][:row] == PACKET_OUTGOING, OUTBOUND, INBOUND).astype(
                np.uint8
            ),
            linux=np.ones(row, dtype=np.bool_),
        )

    def read_stats(self) -> KernelStats:
        """The kernel's counts since the last read (added to self.totals)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, STATS3.size)
        st = KernelStats(*STATS3.unpack(raw))
        self.totals.add(st)
        return st

    def _raise_socket_error(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in (errno.ENETDOWN, errno.ENODEV, errno.ENXIO):
            raise InterfaceDownError(
                self.ifname, f"the interface went down or away ({errno.errorcode[code]})"
            )
        if code:
            raise InputError(self.ifname, f"the packet socket failed: {errno.errorcode[code]}")

    def close(self) -> None:
        if self._promisc:
            # If the interface is gone, its membership went with it.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(SOL_PACKET, PACKET_DROP_MEMBERSHIP, self._mreq())
            self._promisc = False
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self.sock.close()

    def __enter__(self) -> RingReader:
        return self

    def __exit__(
        self, tp: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_config(cfg: RingConfig) -> None:
    page = mmap.PAGESIZE
    bs = cfg.block_size
    if bs < page or bs % page or (bs // page) & (bs // page - 1):
        raise InputError("ring", f"block size {bs} is not a power-of-two number of pages")
    if not 2 <= cfg.blocks <= 4096:
        raise InputError("ring", f"{cfg.blocks} blocks: give 2 to 4096")


def _linktype(sock: socket.socket, ifname: str) -> int:
    """The pcap link type of the interface's frames (ARPHRD_LINKTYPES)."""
    ifreq = struct.pack("16s16x", ifname.encode())
    res = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, ifreq)
    (family,) = struct.unpack_from("=H", res, 16)
    return linktype_of(ifname, family)


def linktype_of(ifname: str, family: int) -> int:
    """The link type for an interface of hardware type `family`; InputError for one whose
    framing netsleuth does not read live."""
    linktype = ARPHRD_LINKTYPES.get(family)
    if linktype is None:
        raise InputError(
            ifname,
            f"ARPHRD {family} framing is not read live (Ethernet, raw IP and Wi-Fi are): "
            f"capture it with `tcpdump -i {ifname} -w FILE` and scan the file",
        )
    return linktype


def interface_linktype(ifname: str) -> int:
    """The link type of an interface, from sysfs (no socket, no privilege: for compiling
    a capture filter before the ring opens). InputError when there is no such interface."""
    try:
        family = int(Path("/sys/class/net", ifname, "type").read_text())
    except (OSError, ValueError):
        raise InputError(ifname, "no such network interface (see `ip link`)") from None
    return linktype_of(ifname, family)


def attach_filter(sock: socket.socket, program: BpfProgram) -> None:
    """SO_ATTACH_FILTER with a classic BPF program (struct sock_fprog: a u16 length and a
    pointer to `struct sock_filter {u16 code; u8 jt, jf; u32 k}` entries)."""
    if not 1 <= len(program) <= 4096:  # BPF_MAXINSNS, include/uapi/linux/bpf_common.h
        raise InputError("--filter", f"a BPF program of {len(program)} instructions")
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in program)
    arr = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(arr))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as err:
        raise InputError(
            "--filter", f"the kernel refused the BPF program: {err.strerror}"
        ) from None
