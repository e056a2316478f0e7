"""Frames from an AF_PACKET socket exactly as they were on the wire, one recvmsg a frame:
the tests' receiving end of a veth (netsleuth's own live capture is the ring of
capture/ring.py and _ring.c, which restores the tag the same way).

With receive VLAN offload (veth and most NICs) the kernel strips the 802.1Q tag into
skb->vlan_tci and the packet socket's data starts after it; the tag comes back only in the
PACKET_AUXDATA control message (packet(7)). libpcap re-inserts it; so do we, or a capture of
incident 1's VLAN-tagged traffic would silently lose its tag.
"""

from __future__ import annotations

import socket
import struct

SOL_PACKET = 263  # include/linux/socket.h
PACKET_AUXDATA = 8  # include/uapi/linux/if_packet.h
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6  # Linux 3.14+: tp_vlan_tpid is set
# struct tpacket_auxdata: tp_status, tp_len, tp_snaplen (u32); tp_mac, tp_net,
# tp_vlan_tci, tp_vlan_tpid (u16).
AUXDATA = struct.Struct("=IIIHHHH")
ETH_P_8021Q = 0x8100


def enable_auxdata(sock: socket.socket) -> None:
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)


def recv_frame(sock: socket.socket, bufsize: int = 65535) -> bytes:
    """One frame from a packet socket with auxdata enabled, VLAN tag restored."""
    data, ancdata, _flags, _addr = sock.recvmsg(bufsize, socket.CMSG_SPACE(AUXDATA.size))
    for level, kind, payload in ancdata:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(payload) < AUXDATA.size:
            continue
        status, _len, _snap, _mac, _net, tci, tpid = AUXDATA.unpack_from(payload)
        # A TCI of 0 with VLAN_VALID is a real tag (priority 0, VLAN 0): keep it.
        if status & TP_STATUS_VLAN_VALID:
            if not status & TP_STATUS_VLAN_TPID_VALID:
                tpid = ETH_P_8021Q
            return data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data
