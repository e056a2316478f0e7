"""A fast replay sender for the live benchmark: an AF_PACKET TPACKET_V2 transmit ring
(packet(7), Documentation/networking/packet_mmap.rst, "TX_RING") filled once with the
frames, then paced sends of whole chunks: one system call sends a chunk of frames, where
tcpreplay makes one per frame (it tops out near 300k frames/s on this machine).

Frame slot layout (include/uapi/linux/if_packet.h, struct tpacket2_hdr): tp_status (u32),
tp_len (u32) at +4; without PACKET_TX_HAS_OFF the frame data starts at
TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) = 32 bytes into the slot (net/packet/af_packet.c,
tpacket_fill_skb)."""

from __future__ import annotations

import mmap
import socket
import struct
import time

import numpy as np

SOL_PACKET = 263
PACKET_VERSION, PACKET_TX_RING, PACKET_VNET_HDR, PACKET_QDISC_BYPASS = 10, 13, 15, 20
# struct virtio_net_hdr (include/uapi/linux/virtio_net.h): flags, gso_type (NONE), hdr_len,
# gso_size, csum_start, csum_offset; native byte order (legacy virtio, x86).
VNET = struct.Struct("=BBHHHH")
TPACKET_V2 = 1
TP_STATUS_SEND_REQUEST = 1
SLOT = 2048
DATA = 32
REQ = struct.Struct("=4I")  # struct tpacket_req: block_size, block_nr, frame_size, frame_nr


def replay(
    ifname: str,
    frames: list[bytes],
    rate: float,
    seconds: float,
    chunk: int = 512,
    *,
    linear: bool = True,
) -> tuple[int, float]:
    """Send `frames` in a loop at `rate` frames/s for `seconds`: (frames sent, seconds).

    linear: each slot starts with a virtio_net_hdr (PACKET_VNET_HDR) whose hdr_len is the
    whole frame, so tpacket_snd copies the frame into the skb's linear area instead of
    pointing the skb at the ring's pages. Measured with perf on the veth: page-fragment
    skbs cost a copy into fresh pages at the veth (__dev_forward_skb -> skb_copy_ubufs,
    ~20% of the sender's time) and make every header read on the receive side a copy out
    of fragments."""
    block = 1 << 22
    per_block = block // SLOT
    blocks = max(1, min(len(frames), 1 << 16) // per_block)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
    s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    if linear:
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)  # before the ring (EBUSY after)
    s.setsockopt(SOL_PACKET, PACKET_TX_RING, REQ.pack(block, blocks, SLOT, blocks * per_block))
    ring = mmap.mmap(s.fileno(), block * blocks, mmap.MAP_SHARED)
    try:
        s.bind((ifname, 0))
        total = blocks * per_block
        buf = np.frombuffer(ring, dtype=np.uint8)
        words = np.frombuffer(ring, dtype=np.uint32)
        status = words[:: SLOT // 4]
        for i in range(total):
            f = frames[i % len(frames)]
            if linear:
                f = VNET.pack(0, 0, len(f), 0, 0, 0) + f
            buf[i * SLOT + DATA : i * SLOT + DATA + len(f)] = np.frombuffer(f, np.uint8)
            words[i * SLOT // 4 + 1] = len(f)
        sent, head = 0, 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            status[head : head + chunk] = TP_STATUS_SEND_REQUEST
            s.send(b"")
            sent += chunk
            head = (head + chunk) % (total - total % chunk)
            ahead = start + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        return sent, time.monotonic() - start
    finally:
        del buf, words, status
        ring.close()
        s.close()
