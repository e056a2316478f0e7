"""Received packets a Linux cooked capture (`tcpdump -i any`, `dumpcap -i any`) holds more
than once: once for each device they passed.

The receive path hands a packet to the packet sockets of every device it passes
(net/core/dev.c, __netif_receive_skb_core: the ptype_all taps, then a bridge port's, a bond
slave's or a VLAN's handler moves the skb to the device above and goes round again,
another_round), each time with the same bytes from the network header on, and a timestamp
that is the same (skb->tstamp, when set on arrival) or later (taken at each delivery:
seen on this kernel for TCP through a bridge, microseconds later, or 135 us on a busy
host). A cooked capture of
LINKTYPE_LINUX_SLL, what both tools write by default, names no device, so the copies of a
fragment looked like one datagram's fragment received twice: on a host with a bridge (any
container or VM host) every fragmented datagram was reported duplicated, split into too
many fragments, and incomplete; and `steer` counted each packet once per device.

A copy, here: a received IP packet of a cooked capture (SLL or SLL2), its whole IP
datagram captured (for `steer`, a packet of any other network protocol too, ARP say,
from its network header on), whose datagram (length and bytes) is that of an earlier
such packet at most WINDOW frames (another CPU's packets come in between) and
MAX_GAP_NS (1 ms) before it, seen on another device where the capture names devices
(SLL2's interface index). Its
length, first HEAD and last TAIL bytes are compared, which hold the IP header (IPv4's
identification and checksum) and the transport header (ports, TCP sequence numbers, the
checksum of the data); for a fragment (the fragment audit) every byte is, since a
fragment with the same header and other data is an overlap an attacker may send. A
packet the snap length cut is never a copy. In LINKTYPE_LINUX_SLL, which names no
device, identical datagrams that reached the host within 1 ms of each other are taken
for copies too: a SPAN port fed twice, a flood of one packet, or a sender repeating one
datagram that fast (IPv4 gives a DF datagram of an unconnected UDP socket
identification 0, and IPv6 has none: a TCP segment retransmitted within a millisecond
over IPv6 has the same bytes, its TCP timestamp counting milliseconds). The trade: a
fragment repeated that fast is counted as a copy (capture.device_copies, whose text says
so), not as a duplicate; with 50 us, the copies of a busy host's bridge were duplicates,
fragment trains of too many fragments and packets steer modelled twice.

The fragment audit and the outer reassembly leave copies out and count them as
capture.device_copies; `steer` leaves them out of its models and counts them. Frames are
the file's, so the fragments the workers hand over (netsleuth/scale/) find the same copies
as the whole batches of one process: a copy's original is a fragment too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from netsleuth.arrays import distinct
from netsleuth.decode.sll import SLL2_BYTES, SLL_BYTES
from netsleuth.decode.table import L2, PacketTable

WINDOW = 32  # frames between a copy and the packet before it
# Between their timestamps: the copies of one packet are delivered in one pass of the
# receive path (another_round), microseconds apart: 0-4 us seen here, but 135 us for a
# TCP SYN through a bridge while this VM was busy (the first packet of its flow; why that
# one was late is not known). 50 us missed that copy, and steer modelled the SYN twice; a
# device copy within 1 ms is what tshark's test oracle counts.
MAX_GAP_NS = 1_000_000
HEAD = 64  # bytes compared from the IP header on (all of them, for a fragment)
TAIL = 16  # and from the datagram's end
WORDS = 1 + (HEAD + TAIL) // 8  # the length, then those bytes


class DeviceCopies:
    """Finds the copies among each batch's rows, in file order, remembering the packets
    of the last WINDOW frames of the batch before. Each packet is looked for among the
    WINDOW candidates before it by one word (_quick: decoded IP header fields and three
    4-byte reads); the bytes of the few that match are compared (_Rows)."""

    def __init__(self, *, fragments: bool = True) -> None:
        # Fragments only (the fragment audit), or every received IP packet (steer: RSS and
        # RPS see a packet once, at the NIC).
        self.fragments = fragments
        self.frame = np.zeros(0, dtype=np.int64)
        self.ts = np.zeros(0, dtype=np.int64)
        self.ifindex = np.zeros(0, dtype=np.int64)
        self.word = np.zeros(0, dtype=np.uint64)  # _quick()
        self.head = np.zeros((0, WORDS), dtype=np.int64)  # _head()
        self.held: list[bytes] = []  # fragments: each one's IP datagram

    def observe(self, t: PacketTable) -> NDArray[np.bool_] | None:
        """Which of t's rows are copies (None: none)."""
        rows = candidates(t, fragments=self.fragments)
        if rows.shape[0] == 0:
            return None  # and the packets remembered stay: no frame is newer
        b = _Rows(self, t, rows)
        copy = b.copies()
        keep = np.flatnonzero(b.frame > int(b.frame[-1]) - WINDOW)  # remembered for the next
        b.read(keep)
        self.frame, self.ts, self.ifindex = b.frame[keep], b.ts[keep], b.ifindex[keep]
        self.word, self.head = b.word[keep], b.head[keep]
        self.held = [b.data(i) for i in keep.tolist()] if self.fragments else []
        copy = copy[b.m :]
        if not copy.any():
            return None
        out = np.zeros(t.n, dtype=np.bool_)
        out[rows[copy]] = True
        return out

    def shifted(self, frames: int) -> DeviceCopies:
        """What is remembered, its frames `frames` later (a range's, numbered in its file)."""
        out = DeviceCopies(fragments=self.fragments)
        out.frame, out.ts, out.ifindex = self.frame + frames, self.ts, self.ifindex
        out.word, out.head, out.held = self.word, self.head, list(self.held)
        return out

    def absorb(self, later: DeviceCopies) -> None:
        """Remember what `later` remembers too: the packets of a part of the file that
        ends after what this one has seen (steering/parallel.py), as if this one had read
        it. Each frame once; the last WINDOW frames kept."""
        frame = np.concatenate([self.frame, later.frame])
        if frame.shape[0] == 0:
            return
        first = np.unique(frame, return_index=True)[1]  # in frame order, each once
        first = first[frame[first] > int(frame.max()) - WINDOW]
        m = self.frame.shape[0]
        self.ts = np.concatenate([self.ts, later.ts])[first]
        self.ifindex = np.concatenate([self.ifindex, later.ifindex])[first]
        self.word = np.concatenate([self.word, later.word])[first]
        self.head = np.concatenate([self.head, later.head])[first]
        if self.fragments:
            self.held = [self.held[i] if i < m else later.held[i - m] for i in first.tolist()]
        self.frame = frame[first]


class _Rows:
    """The packets remembered, then a batch's candidates (DeviceCopies.observe). Bytes are
    read only for rows in a pair (and those remembered): the first HEAD and last TAIL,
    then (fragments) the whole datagram, hashed (bytes hashes are keyed per process: no
    crafted collision) and compared where the hashes agree."""

    def __init__(self, known: DeviceCopies, t: PacketTable, rows: NDArray[np.int64]) -> None:
        self.known, self.t, self.m = known, t, known.frame.shape[0]
        self.l3, self.length = _span(t, rows)
        self.frame = np.concatenate([known.frame, t.frame[rows]])
        self.ts = np.concatenate([known.ts, t.batch.ts_ns[rows]])
        self.ifindex = np.concatenate([known.ifindex, t.ifindex[rows].astype(np.int64)])
        self.word = np.concatenate([known.word, _quick(t, rows)])
        n = self.frame.shape[0]
        self.head = np.zeros((n, WORDS), dtype=np.int64)
        self.have = np.zeros(n, dtype=np.bool_)
        self.head[: self.m], self.have[: self.m] = known.head, True
        self.digest = np.zeros(n, dtype=np.int64)
        self.hashed = np.zeros(n, dtype=np.bool_)

    def copies(self) -> NDArray[np.bool_]:
        """Each row past those remembered: whether it copies one up to WINDOW rows before
        it (candidates are a subset of frames), found by equal _quick() words, at most
        WINDOW frames and MAX_GAP_NS apart, from another device where the capture names
        them, and the same bytes. Each row's nearest match is compared first, all at
        once; the rows whose nearest is no copy look further back, each round over those
        rows alone."""
        copy = np.zeros(self.frame.shape[0], dtype=np.bool_)
        at, was = self._nearest_all()
        while at.shape[0]:
            ok = self.same(at, was)
            copy[at[ok]] = True
            # No copy of that one: look further back, before it (so each round ends).
            at, was = self._nearest(at[~ok], was[~ok])
        return copy

    def _nearest(
        self, todo: NDArray[np.int64], limit: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(the rows of `todo` (increasing) that match one before their `limit` row,
        each one's nearest such match)."""
        frame, ts, ifindex, word = self.frame, self.ts, self.ifindex, self.word
        found = np.full(todo.shape[0], -1, dtype=np.int64)
        for lag in range(1, WINDOW + 1):
            k = np.flatnonzero((found < 0) & (todo - lag >= 0) & (todo - lag < limit))
            if k.shape[0] == 0:
                if not ((found < 0) & (todo - lag >= 0)).any():
                    break
                continue
            at, was = todo[k], todo[k] - lag
            hit = word[at] == word[was]
            hit &= (frame[at] - frame[was] <= WINDOW) & (np.abs(ts[at] - ts[was]) <= MAX_GAP_NS)
            hit &= (ifindex[at] == 0) | (ifindex[at] != ifindex[was])  # SLL2: another device
            found[k[hit]] = was[hit]
        keep = found >= 0
        return todo[keep], found[keep]

    def _nearest_all(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """_nearest() of every row past those remembered: each distance compared over
        the whole batch at once (in a batch without copies, next to no match)."""
        frame, ts, ifindex, word = self.frame, self.ts, self.ifindex, self.word
        n = frame.shape[0]
        found = np.full(n, -1, dtype=np.int64)
        open_ = np.ones(n, dtype=np.bool_)
        open_[: self.m] = False
        for lag in range(1, min(WINDOW, n - 1) + 1):
            at = np.flatnonzero(open_[lag:] & (word[lag:] == word[:-lag])) + lag
            if at.shape[0] == 0:
                continue
            was = at - lag
            near = (frame[at] - frame[was] <= WINDOW) & (np.abs(ts[at] - ts[was]) <= MAX_GAP_NS)
            near &= (ifindex[at] == 0) | (ifindex[at] != ifindex[was])  # SLL2: another device
            found[at[near]] = was[near]
            open_[at[near]] = False
        at = np.flatnonzero(found >= 0)
        return at, found[at]

    def data(self, i: int) -> bytes:
        if i < self.m:
            return self.known.held[i]
        start = int(self.l3[i - self.m])
        return bytes(self.t.batch.buf.data[start : start + int(self.length[i - self.m])])

    def read(self, idx: NDArray[np.int64]) -> None:
        new = distinct(idx[~self.have[idx]])
        self.head[new] = _head(self.t.batch.buf, self.l3[new - self.m], self.length[new - self.m])
        self.have[new] = True

    def same(self, at: NDArray[np.int64], was: NDArray[np.int64]) -> NDArray[np.bool_]:
        self.read(at)
        self.read(was)
        ok: NDArray[np.bool_] = (self.head[at] == self.head[was]).all(axis=1)
        if not self.known.fragments:
            return ok
        todo = distinct(np.concatenate([at[ok], was[ok]]))
        todo = todo[~self.hashed[todo]]
        self.digest[todo] = [hash(self.data(i)) for i in todo.tolist()]
        self.hashed[todo] = True
        ok &= self.digest[at] == self.digest[was]
        for k in np.flatnonzero(ok).tolist():
            ok[k] = self.data(int(at[k])) == self.data(int(was[k]))
        return ok


def _head(
    buf: NDArray[np.uint8], l3: NDArray[np.int64], length: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Each datagram's length, then its first HEAD and last TAIL bytes (zeros where it is
    shorter), as words."""
    cols = np.arange(HEAD + TAIL, dtype=np.int64)
    first = cols[None, :HEAD] < length[:, None]
    # The last TAIL bytes that are past the first HEAD.
    end = np.maximum(length - HEAD, 0)
    last = cols[None, :TAIL] < np.minimum(end, TAIL)[:, None]
    tail = l3 + np.maximum(length - TAIL, HEAD)
    inside = np.concatenate([first, last], axis=1)
    at = np.concatenate(
        [l3[:, None] + cols[None, :HEAD], tail[:, None] + cols[None, :TAIL]], axis=1
    )
    got = np.where(inside, buf[np.where(inside, at, 0)], 0).astype(np.uint8)
    words = np.ascontiguousarray(got).view(np.int64).reshape(-1, (HEAD + TAIL) // 8)
    return np.concatenate([length[:, None], words], axis=1)


def _quick(t: PacketTable, rows: NDArray[np.int64]) -> NDArray[np.uint64]:
    """One word of each row, from its decoded outer IP header and three 4-byte reads: its
    length, fragment offset and identification, the 4 bytes after the transport's first
    4 (TCP's sequence number, UDP's length and checksum), 12 bytes further (TCP's
    checksum: pure ACKs over IPv6, of one length and one timestamp option, differ in
    their acknowledgment number only; helper-40) and its last 4 bytes. Equal
    packets give equal words, and few others within WINDOW rows do (IPv6 has no
    identification: two packets of one flow and one length would, but for those)."""
    o = t.outer
    l3, length = _span(t, rows)
    # Both reads inside the datagram (at least 20 bytes: candidates()).
    hlen = o.hlen[rows].astype(np.int64)
    mid = l3 + np.minimum(hlen + 4, length - 4)
    csum = l3 + np.minimum(hlen + 16, length - 4)  # TCP's checksum: a pure ACK's changes
    end = l3 + length - 4
    word = length.astype(np.uint64)  # at most 17 bits (IPv6: 40 + 65535)
    word |= o.frag_off[rows].astype(np.uint64) << np.uint64(17)  # 13 bits
    word |= o.ident[rows].astype(np.uint64) << np.uint64(32)  # 16 bits, IPv6's 32
    with np.errstate(over="ignore"):
        word ^= t.ethertype[rows].astype(np.uint64) * np.uint64(0x27D4EB2F165667C5)
        word ^= t.v.le32[mid].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        word ^= t.v.le32[csum].astype(np.uint64) * np.uint64(0x165667B19E3779F9)
        word ^= t.v.le32[end].astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    return word


def candidates(t: PacketTable, *, fragments: bool = True) -> NDArray[np.int64]:
    """Received packets of a cooked capture, each with its whole datagram captured (at
    least 20 bytes): IP fragments in any IP layer (fragments), or every IP packet and
    every other packet from its network header on (ARP: steer's models count every
    received frame, so a copy of one is counted twice otherwise)."""
    o = t.outer
    cooked = (t.l2 == L2.SLL) | (t.l2 == L2.SLL2)
    if not cooked.any():
        return np.zeros(0, dtype=np.int64)
    if fragments:
        cooked &= o.is_frag | t.inner_raw.is_frag
    length = o.tot_len.astype(np.int64)
    take = (o.ver != 0) & (length >= 20) & (t.batch.caplen - o.off.astype(np.int64) >= length)
    if not fragments:  # the others: whole where the capture has every byte the wire had
        net = np.where(t.l2 == L2.SLL2, SLL2_BYTES, SLL_BYTES)
        caplen = t.batch.caplen
        take |= (o.ver == 0) & (caplen == t.batch.wirelen) & (caplen - net >= 20)
    return np.flatnonzero(cooked & take & ~t.sent())


def _span(t: PacketTable, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Where each row's datagram starts and its length: its outer IP datagram, or a
    packet of another network protocol from its network header to its end."""
    o = t.outer
    ip = o.ver[rows] != 0
    l3 = t.start[rows] + o.off[rows].astype(np.int64)
    length = o.tot_len[rows].astype(np.int64)
    if not ip.all():
        net = np.where(t.l2[rows] == L2.SLL2, SLL2_BYTES, SLL_BYTES)
        l3 = np.where(ip, l3, t.start[rows] + net)
        length = np.where(ip, length, t.batch.caplen[rows] - net)
    return l3, length
