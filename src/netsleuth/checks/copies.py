"""Received packets a Linux cooked capture (`tcpdump -i any`, `dumpcap -i any`) holds more
than once: once for each device they passed.

The receive path hands a packet to the packet sockets of every device it passes
(net/core/dev.c, __netif_receive_skb_core: the ptype_all taps, then a bridge port's, a bond
slave's or a VLAN's handler moves the skb to the device above and goes round again,
another_round), each time with the one timestamp it was given on arrival (skb->tstamp) and
the same bytes from the network header on. A cooked capture of LINKTYPE_LINUX_SLL, what
both tools write by default, names no device, so the copies of a fragment looked like one
datagram's fragment received twice: on a host with a bridge (any container or VM host)
every fragmented datagram was reported duplicated, split into too many fragments, and
incomplete. One reassembler behind those devices sees the datagram once (ip_rcv runs on
the device at the top).

A copy, here: a received fragment of a cooked capture (SLL or SLL2) whose timestamp, IP
lengths (captured and on the wire) and captured bytes from its outer IP header on are
those of an earlier such fragment at most WINDOW frames before it (another CPU's packets
may come in between). The fragment audit and the outer reassembly leave copies out and
count them as capture.device_copies. Frames are the file's, so the fragments the workers
hand over (netsleuth/scale/) find the same copies as the whole batches of one process:
a copy's original is a fragment too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import L2, PacketTable

WINDOW = 32  # frames between a copy and the packet before it


class DeviceCopies:
    """Finds the copies among each batch's rows, in file order, remembering the fragments
    of the last WINDOW frames of the batch before. Only fragments that share their
    timestamp and lengths with one shortly before have their bytes compared: in a
    capture without copies, next to none. The bytes are compared whole: a fragment with
    the same header and other data (an overlap an attacker sends within one timestamp
    tick) is no copy."""

    def __init__(self) -> None:
        self.frame = np.zeros(0, dtype=np.int64)
        self.key = np.zeros((0, 3), dtype=np.int64)  # timestamp, captured and wire lengths
        self.held: list[bytes] = []  # each one's captured bytes from its IP header

    def observe(self, t: PacketTable) -> NDArray[np.bool_] | None:
        """Which of t's rows are copies (None: none)."""
        rows = _candidates(t)
        m = self.frame.shape[0]
        if rows.shape[0] == 0:
            return None  # and the fragments remembered stay: no frame is newer
        b = t.batch
        l3 = t.start[rows] + t.outer.off[rows].astype(np.int64)
        off = t.outer.off[rows].astype(np.int64)
        mine = np.stack([b.ts_ns[rows], b.caplen[rows] - off, b.wirelen[rows] - off], axis=1)
        frame = np.concatenate([self.frame, t.frame[rows]])
        key = np.concatenate([self.key, mine])
        # Rows of equal timestamp and lengths, in frame order: each with the one before.
        order = np.lexsort((frame, key[:, 2], key[:, 1], key[:, 0]))
        k, f = key[order], frame[order]
        pair = np.flatnonzero((k[1:] == k[:-1]).all(axis=1) & (f[1:] - f[:-1] <= WINDOW)) + 1
        buf = b.buf.data

        def data(i: int) -> bytes | memoryview:
            if i < m:
                return self.held[i]
            at, n = int(l3[i - m]), int(key[i, 1])
            return buf[at : at + n]

        copy = np.zeros(frame.shape[0], dtype=np.bool_)
        for j in pair.tolist():
            copy[order[j]] = data(int(order[j])) == data(int(order[j - 1]))
        keep = np.flatnonzero(frame > int(frame[-1]) - WINDOW)  # remembered for the next
        self.frame, self.key = frame[keep], key[keep]
        self.held = [bytes(data(i)) for i in keep.tolist()]
        copy = copy[m:]
        if not copy.any():
            return None
        out = np.zeros(t.n, dtype=np.bool_)
        out[rows[copy]] = True
        return out


def _candidates(t: PacketTable) -> NDArray[np.int64]:
    """Received fragments of a cooked capture, with a whole outer IP header captured."""
    o = t.outer
    cooked = (t.l2 == L2.SLL) | (t.l2 == L2.SLL2)
    if not cooked.any():
        return np.zeros(0, dtype=np.int64)
    frag = o.is_frag | t.inner_raw.is_frag
    held = t.batch.caplen - o.off.astype(np.int64) >= 20
    return np.flatnonzero(cooked & frag & (o.ver != 0) & ~t.sent() & held)
