"""The C walk over one TPACKET_V3 block, on blocks built by hand from the layout in
include/uapi/linux/if_packet.h (struct tpacket_block_desc with tpacket_hdr_v1: 48 bytes;
struct tpacket3_hdr: 48 bytes, then struct sockaddr_ll: 20 bytes): frames copied with the
VLAN tag put back and their packet type read, and a block whose frames do not fit refused
rather than clamped. No privilege needed."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from netsleuth.capture import _ring

BLOCK = 4096
DESC = struct.Struct("=II IIII Q II II")  # version, priv; status, num, first, len; seq; ts x2
HDR = struct.Struct("=IIIIII HH I I HH 8x")  # next, sec, nsec, snap, len, status, mac, net,
# rxhash, vlan_tci, vlan_tpid, pad
VLAN_VALID, TPID_VALID = 1 << 4, 1 << 6
SLL = struct.Struct("=HHiHBB8s")  # family, protocol, ifindex, hatype, pkttype, halen, addr
MAC = 80  # frame data offset from its header (>= 48 + 20, where the sockaddr_ll ends)
PACKET_HOST, PACKET_OUTGOING = 0, 4


def block(
    frames: list[tuple[bytes, int, int, int]],
    *,
    first: int = 48,
    next_step: int = 256,
    kinds: list[int] | None = None,
) -> bytearray:
    """frames: (data, tp_status, tci, tpid), each of the packet type kinds[k] (host by
    default); headers every `next_step` bytes."""
    b = bytearray(BLOCK)
    DESC.pack_into(b, 0, 3, 0, 1, len(frames), first, BLOCK, 0, 0, 0, 0, 0)
    off = first
    for n, (data, status, tci, tpid) in enumerate(frames):
        nxt = next_step if n + 1 < len(frames) else 0
        HDR.pack_into(
            b,
            off,
            nxt,
            7,
            500 + n,
            len(data),
            len(data) + 10,
            status,
            MAC,
            MAC + 14,
            0,
            tci,
            tpid,
            0,
        )
        kind = PACKET_HOST if kinds is None else kinds[n]
        SLL.pack_into(b, off + 48, 17, 0x0008, 2, 1, kind, 6, bytes(8))
        b[off + MAC : off + MAC + len(data)] = data
        off += next_step
    return b


def walk(
    b: bytearray, room: int = 8192, *, ethernet: bool = True
) -> tuple[int, bytes, list[list[int]]]:
    buf = np.zeros(room, np.uint8)
    cols = [np.zeros(8, np.int64) for _ in range(5)]
    offset, caplen, wirelen, ts_ns, kind = cols
    n, pos = _ring.walk_block(
        b, 0, BLOCK, buf, 0, 0, offset, caplen, wirelen, ts_ns, kind, ethernet
    )
    return n, buf[:pos].tobytes(), [c[:n].tolist() for c in cols]


def test_frames_and_vlan_tags() -> None:
    plain = bytes(range(12)) + b"\x08\x00" + b"p" * 20
    tagged = bytes(range(12, 24)) + b"\x88\xb5" + b"t" * 10
    b = block(
        [
            (plain, 1, 0, 0),
            (tagged, 1 | VLAN_VALID | TPID_VALID, 0xA00A, 0x88A8),
            (tagged, 1 | VLAN_VALID, 5, 0),
        ]
    )
    n, data, (off, cap, wire, ts, kinds) = walk(b)
    assert n == 3
    assert data == b"".join(
        [
            plain,
            tagged[:12] + b"\x88\xa8\xa0\x0a" + tagged[12:],
            tagged[:12] + b"\x81\x00\x00\x05" + tagged[12:],
        ]
    )
    assert cap == [34, 28, 28] and wire == [44, 38, 38]  # tp_len + 10, plus the tag
    assert off == [0, 34, 62] and ts == [7_000_000_500, 7_000_000_501, 7_000_000_502]
    assert kinds == [PACKET_HOST] * 3


def test_each_frame_s_packet_type_is_read() -> None:
    """What the host sent (PACKET_OUTGOING) and what it received, frame by frame."""
    frames = [(bytes(range(12)) + b"\x08\x00" + b"p" * 20, 1, 0, 0)] * 3
    kinds = [PACKET_OUTGOING, PACKET_HOST, 3]  # 3: PACKET_OTHERHOST
    _, _, cols = walk(block(frames, kinds=kinds))
    assert cols[4] == kinds


def test_a_tag_is_put_back_only_into_ethernet_frames() -> None:
    """On a raw IP (or 802.11) interface bytes 12-15 are the IPv4 source address, not the
    place of a tag: the frame is copied as it is (libpcap restores tags for Ethernet only)."""
    packet = bytes(range(40))
    _, data, (_, cap, wire, _, _) = walk(block([(packet, 1 | VLAN_VALID, 5, 0)]), ethernet=False)
    assert data == packet and cap == [40] and wire == [50]


@pytest.mark.parametrize(
    "spoil",
    [
        "snaplen past the block",
        "header past the block",
        "zero next offset",
        "batch too small",
        "data over the address",
    ],
)
def test_blocks_that_do_not_fit_are_refused(spoil: str) -> None:
    frames = [(b"\x00" * 40, 1, 0, 0)] * 2
    b = block(frames)
    room = 8192
    if spoil == "snaplen past the block":
        struct.pack_into("=I", b, 48 + 256 + 12, BLOCK)
    elif spoil == "header past the block":
        struct.pack_into("=I", b, 48, BLOCK - 40)
    elif spoil == "zero next offset":
        struct.pack_into("=I", b, 48, 0)
    elif spoil == "data over the address":  # tp_mac inside the sockaddr_ll: not the kernel's
        struct.pack_into("=H", b, 48 + 24, 48 + 19)
    else:
        room = 60
    with pytest.raises(ValueError, match="does not fit"):
        walk(b, room)
    with pytest.raises(ValueError, match="outside the ring"):
        _ring.block_info(b, BLOCK - 8)
