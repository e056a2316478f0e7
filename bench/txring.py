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
PACKET_VERSION, PACKET_TX_RING, PACKET_QDISC_BYPASS = 10, 13, 20
TPACKET_V2 = 1
TP_STATUS_SEND_REQUEST = 1
SLOT = 2048
DATA = 32
REQ = struct.Struct("=4I")  # struct tpacket_req: block_size, block_nr, frame_size, frame_nr


def replay(
    ifname: str, frames: list[bytes], rate: float, seconds: float, chunk: int = 512
) -> tuple[int, float]:
    """Send `frames` in a loop at `rate` frames/s for `seconds`: (frames sent, seconds)."""
    block = 1 << 22
    per_block = block // SLOT
    blocks = max(1, min(len(frames), 1 << 16) // per_block)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
    s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
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
