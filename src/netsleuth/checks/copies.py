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

A copy, here: a received fragment of a cooked capture (SLL or SLL2), its whole IP datagram
captured, whose timestamp and IP datagram (length and every byte) are those of an earlier
such fragment at most WINDOW frames before it (another CPU's packets may come in
between, copies of them too). The fragment audit and the outer reassembly leave copies
out and count them as capture.device_copies. Frames are the file's, so the fragments the
workers hand over (netsleuth/scale/) find the same copies as the whole batches of one
process: a copy's original is a fragment too. A fragment the snap length cut is never a
copy (its uncaptured bytes may differ: an overlap an attacker sends within one
timestamp tick). In a capture of microsecond timestamps a duplicate that arrived within
the same microsecond on the wire (a SPAN port fed twice) is taken for a copy too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.decode.table import L2, PacketTable

WINDOW = 32  # frames between a copy and the packet before it
HEAD = 24  # bytes of each datagram that decide which are compared whole


class DeviceCopies:
    """Finds the copies among each batch's rows, in file order, remembering the fragments
    of the last WINDOW frames of the batch before (their IP datagrams: at most 64 KiB
    each). Only fragments that share their timestamp and length with another have their
    first HEAD bytes read, and only those that share these too are compared whole: in a
    capture without copies, next to none; in a flood of one timestamp, few."""

    def __init__(self) -> None:
        self.frame = np.zeros(0, dtype=np.int64)
        self.key = np.zeros((0, 2), dtype=np.int64)  # timestamp, IP datagram length
        self.head = np.zeros((0, HEAD // 8), dtype=np.int64)  # _head()
        self.held: list[bytes] = []  # each one's IP datagram

    def observe(self, t: PacketTable) -> NDArray[np.bool_] | None:
        """Which of t's rows are copies (None: none)."""
        rows = _candidates(t)
        m = self.frame.shape[0]
        if rows.shape[0] == 0:
            return None  # and the fragments remembered stay: no frame is newer
        buf = t.batch.buf
        l3 = t.start[rows] + t.outer.off[rows].astype(np.int64)
        mine = np.stack([t.batch.ts_ns[rows], t.outer.tot_len[rows].astype(np.int64)], axis=1)
        frame = np.concatenate([self.frame, t.frame[rows]])
        key = np.concatenate([self.key, mine])

        def heads(at: NDArray[np.int64]) -> NDArray[np.int64]:
            """_head() of these positions (remembered ones first, then this batch's)."""
            old = at[at < m]
            new = at[at >= m] - m
            return np.concatenate([self.head[old], _head(buf, l3[new], mine[new, 1])])

        def data(i: int) -> bytes:
            if i < m:
                return self.held[i]
            at = int(l3[i - m])
            return bytes(buf.data[at : at + int(key[i, 1])])

        maybe = _sharing(key)
        maybe = maybe[_sharing(np.concatenate([key[maybe], heads(maybe)], axis=1))]
        copy = np.zeros(frame.shape[0], dtype=np.bool_)
        last: dict[tuple[int, bytes], int] = {}  # (timestamp, datagram) -> its latest frame
        for i in maybe.tolist():  # in frame order
            seen = (int(key[i, 0]), data(i))
            before = last.get(seen)
            copy[i] = before is not None and int(frame[i]) - before <= WINDOW
            last[seen] = int(frame[i])
        keep = np.flatnonzero(frame > int(frame[-1]) - WINDOW)  # remembered for the next
        self.frame, self.key, self.head = frame[keep], key[keep], heads(keep)
        self.held = [data(i) for i in keep.tolist()]
        copy = copy[m:]
        if not copy.any():
            return None
        out = np.zeros(t.n, dtype=np.bool_)
        out[rows[copy]] = True
        return out


def _head(
    buf: NDArray[np.uint8], l3: NDArray[np.int64], length: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Each datagram's first HEAD bytes (zeros past its length) as HEAD // 8 words: its
    header, with the fields that tell fragments apart (identification, offset, checksum)."""
    cols = np.arange(HEAD, dtype=np.int64)
    inside = cols[None, :] < length[:, None]
    at = np.where(inside, l3[:, None] + cols[None, :], 0)
    head = np.where(inside, buf[at], 0).astype(np.uint8)
    return np.ascontiguousarray(head).view(np.int64).reshape(-1, HEAD // 8)


def _sharing(key: NDArray[np.int64]) -> NDArray[np.int64]:
    """The rows whose key another row has, in row order."""
    order = np.lexsort(key.T[::-1])
    k = key[order]
    same = (k[1:] == k[:-1]).all(axis=1)
    hit = np.zeros(key.shape[0], dtype=np.bool_)
    hit[order[1:][same]] = True
    hit[order[:-1][same]] = True
    return np.flatnonzero(hit)


def _candidates(t: PacketTable) -> NDArray[np.int64]:
    """Received fragments of a cooked capture, each with its whole IP datagram captured
    (the outer one: the fragment may be an inner one)."""
    o = t.outer
    cooked = (t.l2 == L2.SLL) | (t.l2 == L2.SLL2)
    if not cooked.any():
        return np.zeros(0, dtype=np.int64)
    frag = o.is_frag | t.inner_raw.is_frag
    length = o.tot_len.astype(np.int64)
    whole = (length >= 20) & (t.batch.caplen - o.off.astype(np.int64) >= length)
    return np.flatnonzero(cooked & frag & (o.ver != 0) & ~t.sent() & whole)
