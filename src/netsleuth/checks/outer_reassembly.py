"""Tunnels behind outer fragmentation: reassemble the outer IPv4 datagrams that carry a
tunnel and audit the inner packet of the whole datagram.

When the path MTU is below the inner packet plus the encapsulation, the outer packet is
fragmented (RFC 4459 section 3) and the inner packet spans fragments: only the reassembled
outer datagram holds it, as only the decapsulating endpoint sees it. A poison inner
packet (incident 1's zero-length fragment, say) split over outer fragments is invisible to a
per-packet decoder: an evasion. So the inner layer of a fragmented outer datagram is judged
here, from the reassembled datagram, and nowhere else (observe_all hides it from the other
checks, so nothing is counted twice), with findings attributed to the frame that completed
the datagram and evidence naming every frame that carried it. Wireshark does the same
(ip.defragment); tcpdump, Zeek's packet analysis and Suricata's decoder events do not look
inside.

The rebuilt packets go through the same check instances as every other packet (so an inner
fragment train split between plain and fragmented outer packets is one train), with their
outer layer blanked (inner_only): the outer fragments were judged already.

Kept per datagram: the fragments' bytes, bounded (MAX_OPEN datagrams, MAX_BYTES, the
audit's 30 s); what a bound drops is reported (tunnel.reassembly_bounded), never silently
judged. Overlapping datagrams are not rebuilt: stacks disagree on their bytes (the fragment
audit reports them) and modern Linux discards them; neither are datagrams whose bytes the
capture's snap length cut (capture.truncated_packet names those frames). IPv4 outer
datagrams only so far; a UDP datagram is held until its first fragment, whose ports say
whether a tunnel is bound, arrives (first or last). Datagrams that begin and complete
within one batch, nearly all of them, are found and rebuilt at once (outer_rebuild.py);
this module's tracker follows the rest fragment by fragment.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import Counter
from typing import Any, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from netsleuth.capture import RecordBatch
from netsleuth.checks.fragments import (
    FRAG_COST,
    KEY,
    KEY_VOID,
    TIMEOUT_NS,
    Datagram,
    OuterKeys,
    at_once,
    fragment_keys,
    key_bytes,
    newest_kept,
    observed,
    open_among,
    seen_at,
)
from netsleuth.checks.frames import smallest
from netsleuth.checks.held import Gone, HeldTable
from netsleuth.checks.outer_rebuild import (
    Frags,
    Rebuilt,
    from_packets,
    join,
    lone_orphans,
    settle,
)
from netsleuth.checks.tunnel_kinds import count_tunnels
from netsleuth.craft.checksum import inet_checksum
from netsleuth.decode import decode
from netsleuth.decode.registry import REGISTRY
from netsleuth.decode.table import NS, PacketTable, Tunnel
from netsleuth.decode.udp import payload_port
from netsleuth.findings import Finding
from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.reassembly import Fragment, overlaps

LINKTYPE_IPV4 = 228
MAX_OPEN = 1024
MAX_BYTES = 16 << 20
MAX_EVIDENCE = 20
# _follow looks MIN_LOOK to WINDOW fragments ahead for a stretch no bound can reach
# (_stretch), further while stretches take all it looked at. A look costs what ~10
# fragments one by one do: a stretch is gathered where that saves MIN_GAIN runs, and where
# not (a bound near, keys that do not recur) up to MAX_STEP fragments go in arrival order
# before the next look. A flood that let the count bound cut every look at 32 distinct
# keys was 2.7 times slower than one by one when every look spanned 4096 (helper-47).
MIN_LOOK = 64
WINDOW = 4096
MIN_GAIN = 16
MAX_STEP = 256
BOUNDED = "tunnel.reassembly_bounded"
OUTER_FRAGMENTED = "tunnel.outer_fragmented"


def tunnel_carriers() -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(IP protocols, UDP ports) that lead into a tunnel, from the dispatch table."""
    protos, ports = np.zeros(256, np.bool_), np.zeros(1 << 16, np.bool_)
    for b in REGISTRY.bindings:
        if b.tunnel != Tunnel.NONE and b.ns == NS.IPPROTO:
            protos[b.key] = True
        elif b.tunnel != Tunnel.NONE and b.ns == NS.UDPPORT:
            ports[b.key] = True
    protos[17] = bool(ports.any())  # UDP tunnels: decided by the first fragment's ports
    return protos, ports


# (VLAN id, QinQ inner VLAN id, obs, side): what of a fragment's link layer and capture
# point keys its datagram (fragments.KEY, observed) and so the inner trains of the rebuilt
# packet.
Link = tuple[int, int, int, int]


@dataclasses.dataclass
class Head:
    """What the first fragment adds: its IPv4 header, its Link (the rebuilt packet has no
    link layer, and these key the inner fragment trains), and whether its UDP ports lead
    into a tunnel (None: not UDP)."""

    ip: bytes
    link: Link
    udp_tunnel: bool | None


class Later(NamedTuple):
    """A run of fragments taken at once (_extend) into a datagram that cannot complete
    yet, counted into it (Datagram.tally) but not yet placed: their bytes one after the
    other, and per fragment its offset, end, MF flag, frame and where its bytes start in
    `data`, as int64 rows (`cols`). Two bytes objects in a tuple: a run of two fragments
    costs ~200 bytes besides theirs, within the 2 x FRAG_COST the table charges (with
    NumPy arrays kept, ~430: a flood of such pairs held 1.6 times MAX_BYTES, helper-53)."""

    data: bytes
    cols: bytes


@dataclasses.dataclass
class Held:
    """One outer datagram being rebuilt."""

    dg: Datagram
    head: Head | None = None
    cut: bool = False  # a fragment's bytes were cut by the capture's snap length
    udp: bool = False
    # Runs counted into dg but not placed yet (place_later()): a datagram still waiting for
    # its first fragment can neither complete nor be rebuilt, and one that never sees it,
    # as every FragmentSmack datagram, drops them unread. Placing each fragment as it
    # came, a Fragment object each, took 2.6 s of a 9.6 s scan of FragmentSmack's 1M.
    later: list[Later] = dataclasses.field(default_factory=list)

    @property
    def known(self) -> bool:
        """Known to carry a tunnel: not UDP, or UDP whose first fragment said so."""
        return not self.udp or (self.head is not None and bool(self.head.udp_tunnel))

    def place_later(self) -> None:
        """The runs deferred placed into the datagram, in the order they came."""
        for run in self.later:
            off, end, more, frame, at = np.frombuffer(run.cols, np.int64).reshape(5, -1).tolist()
            stop = [*at[1:], len(run.data)]
            frags = [
                Fragment(o, run.data[a:b], bool(m), fr)
                for o, a, b, m, fr in zip(off, at, stop, more, frame, strict=True)
            ]
            self.dg.place(frags, end)
        self.later.clear()


class Pending(NamedTuple):
    """The fragments the tracker follows in a batch (_follow), as columns."""

    keyed: NDArray[np.void]  # reassembly keys
    group: NDArray[np.int64]  # the batch's key groups
    first: NDArray[np.bool_]  # offset 0
    ts: NDArray[np.int64]
    cost: NDArray[np.int64]  # what each adds to its datagram (HeldTable's bytes)
    row: NDArray[np.int64]  # where each is in the batch's Frags

    def pick(self, at: NDArray[np.int64]) -> Pending:
        return Pending(
            self.keyed[at], self.group[at], self.first[at], self.ts[at], self.cost[at], self.row[at]
        )


class Row(NamedTuple):
    """One outer fragment, as plain integers (positions in the batch buffer)."""

    off: int  # fragment offset
    ip: int  # where its IPv4 header starts
    data: int  # where its data starts
    ip_end: int  # where its total length ends
    stop: int  # where the capture's bytes of it stop (snap length)
    ts: int
    frame: int
    more: bool
    udp: bool
    to_tunnel: bool  # for a UDP first fragment: its ports lead into a tunnel
    link: Link


class Rows:
    """A batch's fragments as Rows for the one-by-one path (_add), made as it asks for
    them. Most fragments go in by runs (_extend), which read the columns instead: a Row
    for each fragment followed took 1.2 s of a 9.6 s scan of FragmentSmack's 1M."""

    def __init__(self, f: Frags) -> None:
        self.f = f
        self.cols: list[list[Any]] | None = None

    def __getitem__(self, i: int) -> Row:
        if self.cols is None:  # once a batch: lists, not a NumPy scalar read a field
            f = self.f
            cols = (f.off, f.ip, f.data, f.ip_end, f.stop, f.ts, f.frame, f.more, f.udp)
            links = (f.vlan1, f.vlan2, f.obs, f.side)
            self.cols = [c.tolist() for c in (*cols, ~f.bad_head, *links)]
        off, ip, data, ip_end, stop, ts, frame, more, udp, tun, v1, v2, obs, side = self.cols
        link = (v1[i], v2[i], obs[i], side[i])
        at = (off[i], ip[i], data[i], ip_end[i], stop[i], ts[i], frame[i])
        return Row(*at, more[i], udp[i], tun[i], link)


class TunnelReassembly:
    def __init__(self) -> None:
        self.protos, self.ports = tunnel_carriers()
        self.open: HeldTable[Held] = HeldTable(KEY_VOID, MAX_OPEN, MAX_BYTES)
        self.now = 0
        self.rebuilt: list[PacketTable] = []  # taken by checks.follow after each batch
        self.bounded: list[int] = []  # frames of datagrams a bound dropped
        self.bounded_count = 0
        self.carried: list[int] = []  # frames of outer fragments that carried a tunnel
        self.carried_count = 0
        self.evidence: list[dict[str, object]] = []
        # Tunnel packets by kind that only the rebuilt datagrams show: a UDP tunnel's first
        # outer fragment stops at UDP (its length covers the whole datagram), while GRE's or
        # IP-in-IP's shows the tunnel and is counted with its batch (scan.Summary).
        self.tunnel_kinds: Counter[str] = Counter()

    def observe(
        self, t: PacketTable, *, now: int | None = None, outer: OuterKeys | None = None
    ) -> None:
        """One batch; `now` as for FragmentAudit.observe; `outer`: the batch's outer
        fragment keys, when the caller shares them with the audit (checks.follow)."""
        outer = outer if outer is not None else OuterKeys(t)
        udp = bool((t.outer.proto == 17).any())
        ports = self._tunnel_ports(t) if udp else np.zeros(t.n, dtype=np.bool_)
        rows = self._rows(t, ports, outer)
        if t.n:
            self.now = max(self.now, int(t.batch.ts_ns.max()))
        if now is not None:
            self.now = max(self.now, now)
        done: list[Held] = []
        parts: list[Rebuilt] = []
        if rows.shape[0]:
            # What begins and completes in this batch is settled at once (outer_rebuild.py);
            # the tracker follows the rest, fragment by fragment.
            frags = self._frags(t, rows, ports, outer)
            settled, rebuilt = settle(frags, t.batch.buf)
            parts.append(rebuilt)
            lone = lone_orphans(frags, settled)
            if lone.any():
                self._admit(t, rows, frags, lone)
            left = ~settled & ~lone
            if left.any():
                done = self._follow(t, rows, frags, left)
        self._expire()
        if done:
            parts.append(_rebuilt(done))
        parts = [r for r in parts if len(r)]
        if parts:
            self._judge(join(parts) if len(parts) > 1 else parts[0])

    def _follow(
        self, t: PacketTable, rows: NDArray[np.int64], f: Frags, sel: NDArray[np.bool_]
    ) -> list[Held]:
        """The fragments `sel` picks, one by one into their datagrams (_add): those they
        completed. Every fragment goes in: a bound evicts the oldest datagrams as they come
        (_bound). A cap on the new datagrams of one batch used to skip those past 1024 and
        call them bounded, though most complete within the batch: on ordinary VXLAN
        traffic in outer fragments a third of it, never checked. A run of one key's
        fragments in a row, none of them a first fragment (the only one that can complete
        a datagram still waiting for its ports, or drop it), goes in at once (_extend); a
        key's fragments are brought together first where the order cannot matter: the
        batch is taken in stretches that no bound can reach (_stretch), and where nothing
        is worth gathering (a bound near, or keys that do not recur), in arrival order,
        more at a time before the next look while it stays so."""
        keyed = fragment_keys(t, "outer", t.outer, rows[sel])
        cost = np.maximum(f.stop[sel] - f.data[sel], 0) + FRAG_COST
        which = np.flatnonzero(sel)
        rest = Pending(keyed, f.group[which], f.off[which] == 0, f.ts[which], cost, which)
        frags = Rows(f)
        done: list[Held] = []
        a, n, skip, look = 0, which.shape[0], 1, MIN_LOOK
        while a < n:
            m, order = self._stretch(a, rest, look)
            if order is None:
                m = min(max(m, skip), n - a)
                skip, look = min(2 * skip, MAX_STEP), MIN_LOOK
            else:
                # A stretch that took all it looked at looks further next time; one a bound
                # cut, about as far again.
                grown = 2 * look if m == look else 2 * m
                skip, look = 1, min(max(MIN_LOOK, grown), WINDOW)
            at = np.arange(a, a + m) if order is None else a + order
            done += self._runs(t, frags, rest.pick(at))
            a += m
        return done

    def _runs(self, t: PacketTable, frags: Rows, p: Pending) -> list[Held]:
        """Fragments in the order given, a run of one key's at once where _extend may:
        the datagrams they completed."""
        width, keys, done = KEY.itemsize, p.keyed.tobytes(), []
        runs = at_once(
            p.group, p.first, p.ts, p.cost, timeout_ns=TIMEOUT_NS, max_bytes=self.open.max_bytes
        )
        for a, b, whole in runs:
            key = keys[a * width : (a + 1) * width]
            if whole and self._extend(t, frags.f, p.row[a:b], key, int(p.cost[a:b].sum())):
                continue
            for i in p.row[a:b].tolist():
                held = self._add(t, frags[i], key)
                if held is not None:
                    done.append(held)
        return done

    def _stretch(self, a: int, p: Pending, look: int) -> tuple[int, NDArray[np.int64] | None]:
        """The fragments from `a` on that no bound can reach, whatever their order: how
        many (at most `look`), and the order to take them in (None: arrival order, where
        gathering would save fewer than MIN_GAIN runs: not worth a look's cost). Each
        key whose fragments there can neither complete nor expire its datagram has all of
        them at its first one, so that at_once makes them one run. FragmentSmack
        interleaves a few datagrams' fragments: one by one, 300k of them took 3 s of a
        4.6 s profile; and once its datagrams fill the byte bound, a batch whole never fits
        (1M of them: 11 s of 15), while the bytes an eviction frees take a thousand more.

        Taking them earlier leaves what arrival order leaves. They change no other key's
        datagram; the first of them stays in place, so new datagrams open in the same
        order (the bounds' age); and no bound can evict here, whatever the order: each key
        holds one datagram at most (those open now, and one for each key that is not, up
        to MAX_OPEN), and these fragments add their cost at most (up to MAX_BYTES). A key
        qualifies with no first fragment here (the only one that can complete a datagram
        waiting for its ports, or drop it), a datagram held without one, and none of its
        fragments later than the timeout after its datagram began. The table is asked for
        each key as it is now: _admit, or an earlier stretch, may have evicted or opened
        its datagram (helper-42)."""
        opened = self.open
        spent = np.cumsum(p.cost[a : a + look])
        m = int(np.searchsorted(spent, opened.max_bytes - opened.nbytes, side="right"))
        _, at, inv = np.unique(p.group[a : a + m], return_index=True, return_inverse=True)
        # Each key as the table holds it now, in the order they first come here, up to the
        # first that would open a datagram past MAX_OPEN (the stretch ends before it).
        rows: list[int | None] = [None] * at.shape[0]
        room = opened.max_open - len(opened)
        for j in np.argsort(at).tolist():
            rows[j] = opened.find(p.keyed[a + at[j]].tobytes())
            if rows[j] is None:
                room -= 1
            if room < 0:
                m = int(at[j])
                break
        if m < 2:
            return m, None
        inv, seen = inv[:m], at < m
        heads = np.zeros(at.shape[0], dtype=np.bool_)
        np.logical_or.at(heads, inv, p.first[a : a + m])
        latest = np.full(at.shape[0], np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(latest, inv, p.ts[a : a + m])
        # Unsigned: a capture's timestamps may lie anywhere in int64 (latest >= its first).
        spread = latest[seen].view(np.uint64) - p.ts[a + at[seen]].view(np.uint64)
        ok = np.zeros(at.shape[0], dtype=np.bool_)
        ok[seen] = ~heads[seen] & (spread <= np.uint64(TIMEOUT_NS))
        for j, row in enumerate(rows):
            if ok[j] and row is not None:
                ok[j] = self._headless(row, int(latest[j]))
        if not ok.any():
            return m, None
        pos = np.arange(m, dtype=np.int64)
        order = np.argsort(np.where(ok[inv], at[inv], pos), kind="stable")
        here = p.group[a : a + m]
        gain = np.count_nonzero(np.diff(here)) - np.count_nonzero(np.diff(here[order]))
        return m, order if gain >= MIN_GAIN else None

    def _headless(self, row: int, latest: int) -> bool:
        """Whether the datagram held in `row` has no first fragment yet and has not
        expired by `latest`."""
        held = self.open.obj(row)
        expires = int(self.open.ts[row]) + TIMEOUT_NS
        return (held is None or held.head is None) and latest <= expires

    def _extend(
        self, t: PacketTable, f: Frags, idx: NDArray[np.int64], key: bytes, cost: int
    ) -> bool:
        """Non-first fragments of one key (at_once), into its datagram at once when none can
        change what _add decides but the bytes: a datagram that is new (the newest row: the
        bounds evict the same older ones at the run's end as along it), or one held
        without its first fragment yet (so none completes it), not expired before the
        last of them came, and with the whole table within MAX_BYTES after them (one by
        one, the byte bound could evict it midway, being older than others, and the rest
        of the run would open a new datagram: helper-33). Whether they went in: counted
        into the datagram, their bytes and ranges deferred (Held.later)."""
        opened = self.open
        row = opened.find(key)
        ts = f.ts[idx]
        if row is None:
            held = Held(Datagram(key, "outer", 4, int(ts[0])), udp=bool(f.udp[idx[0]]))
        else:
            held = opened.obj(row) or self._grown(row, key)
            late = int(ts.max()) > held.dg.first_ts + TIMEOUT_NS
            if held.head is not None or late or opened.nbytes + cost > opened.max_bytes:
                return False
        if row is None:
            row = opened.add(key, int(ts[0]), held, 0)
        data, stop, ip_end, off = f.data[idx], f.stop[idx], f.ip_end[idx], f.off[idx]
        held.cut |= bool((stop < ip_end).any())
        size = np.maximum(stop - data, 0)
        at = np.zeros(size.shape[0] + 1, dtype=np.int64)
        np.cumsum(size, out=at[1:])
        spans = np.repeat(data - at[:-1], size) + np.arange(at[-1])
        frame = f.frame[idx]
        cols = np.stack((off, ip_end - data + off, f.more[idx], frame, at[:-1]))
        held.later.append(Later(t.batch.buf[spans].tobytes(), cols.tobytes()))
        held.dg.tally(frame.tolist(), int(at[-1]))
        opened.charge(row, held.dg.nbytes)
        self._bound()
        return True

    def _groups(
        self, outer: OuterKeys, rows: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """(each row's key group, per group: whether the tracker holds a datagram of it),
        from the batch's outer fragment keys, grouped once for this and the audit."""
        uniq, inv, hashes = outer.grouped(outer.at(rows))
        return inv, open_among(uniq, hashes, self.open.held_keys())

    def _frags(
        self, t: PacketTable, rows: NDArray[np.int64], ports: NDArray[np.bool_], outer: OuterKeys
    ) -> Frags:
        o, start = t.outer, t.start[rows]
        obs, side = observed(t, rows)
        group, held = self._groups(outer, rows)
        ip = start + o.off[rows]
        ip_end = ip + o.tot_len[rows].astype(np.int64)
        off = o.frag_off[rows].astype(np.int64)
        return Frags(
            group=group,
            held=held,
            off=off,
            ip=ip,
            data=start + o.frag_data[rows],
            ip_end=ip_end,
            stop=np.minimum(ip_end, start + t.batch.caplen[rows]),
            ts=t.batch.ts_ns[rows],
            frame=t.frame[rows],
            more=(o.flags[rows] & 1) != 0,
            udp=o.proto[rows] == 17,
            bad_head=(o.proto[rows] == 17) & (off == 0) & ~ports[rows],
            vlan1=t.vlan1[rows].astype(np.int64),
            vlan2=t.vlan2[rows].astype(np.int64),
            obs=obs,
            side=side,
        )

    def advance(self, now: int) -> None:
        """A batch without fragments ended at `now`."""
        self.now = max(self.now, now)
        self._expire()

    def _rows(
        self, t: PacketTable, ports: NDArray[np.bool_], outer: OuterKeys
    ) -> NDArray[np.int64]:
        """Outer IPv4 fragments of a tunnel protocol. UDP, whose ports are in the first
        fragment only: a key's fragments are taken when its first fragment in this batch
        leads into a tunnel, when it is held already, or when its first fragment is not in
        this batch (it may come later: held, silently, until it shows its ports). Known
        limit: a UDP datagram that is no tunnel's, its first fragment in an earlier batch,
        is held so too until it expires (the first fragment is not remembered); that costs
        a slot (8 at most over the 1M-packet bench mix), and a tunnel datagram reusing its
        key (addresses and IP id) within 30 s would meet it and not be rebuilt."""
        o = t.outer
        cand = o.is_frag & (o.ver == 4) & self.protos[o.proto]
        if outer.copies is not None:  # copies of a received packet (checks/copies.py)
            cand &= ~outer.copies
        udp = np.flatnonzero(cand & (o.proto == 17))
        if udp.shape[0] == 0:
            return np.flatnonzero(cand)
        cand[udp] = False
        first = o.frag_off[udp] == 0
        tunnel = ports[udp]
        if first.all() and not self.open:  # no key to follow: only tunnels' first fragments
            cand[udp[tunnel]] = True
            return np.flatnonzero(cand)
        inv, is_open = self._groups(outer, udp)
        n = is_open.shape[0]
        has_first = np.bincount(inv[first], minlength=n) > 0
        to_tunnel = np.bincount(inv[first & tunnel], minlength=n) > 0
        take = to_tunnel | is_open | ~has_first
        cand[udp[take[inv]]] = True
        return np.flatnonzero(cand)

    def _tunnel_ports(self, t: PacketTable) -> NDArray[np.bool_]:
        """Per packet: a UDP first fragment whose payload port is bound to a tunnel."""
        o = t.outer
        at = t.start + o.frag_data.astype(np.int64)
        # The ports are in the IP payload: a first fragment shorter than 4 bytes has none,
        # whatever padding its frame carries after it.
        ip_end = t.start + o.off.astype(np.int64) + o.tot_len.astype(np.int64)
        room = (np.minimum(t.start + t.batch.caplen, ip_end) - at) >= 4
        rows = np.flatnonzero((o.proto == 17) & (o.frag_off == 0) & o.is_frag & room)
        # First fragments only: observe() and _rows() look at fragment rows alone, and
        # reading every row's ports was 5 % of a scan of ordinary traffic.
        sport = t.v.be16[at[rows]]
        dport = t.v.be16[at[rows] + 2]
        # The same port rule as the UDP decoder (the lower port when bound or a system
        # port): a DNS reply to a client port that is a tunnel's is no tunnel.
        ports = np.zeros(t.n, dtype=np.bool_)
        ports[rows] = self.ports[payload_port(sport, dport)]
        return ports

    def _add(self, t: PacketTable, frag: Row, key: bytes) -> Held | None:
        """One outer fragment into its datagram. The datagram when this fragment completed
        it."""
        opened = self.open
        row = opened.find(key)
        if row is not None:
            held = opened.obj(row) or self._grown(row, key)
            held.place_later()  # before this fragment, as they came
            if frag.ts > held.dg.first_ts + TIMEOUT_NS:
                # Expired before this fragment came (Linux: ip_expire, ipfrag_time after
                # the queue was made), whether or not a batch ended in between: the fragment
                # starts a new datagram, as in the fragment audit (FragmentAudit._track).
                opened.remove(row)
                row = None
        if row is None:
            held = Held(Datagram(key, "outer", 4, frag.ts), udp=frag.udp)
            row = opened.add(key, frag.ts, held, 0)
        buf = t.batch.buf.data
        chunk = bytes(buf[frag.data : max(frag.stop, frag.data)])
        held.cut |= frag.stop < frag.ip_end
        end = frag.ip_end - frag.data + frag.off
        held.dg.add(Fragment(frag.off, chunk, frag.more, frag.frame), end)
        opened.charge(row, held.dg.nbytes)
        if frag.off == 0:
            tunnel = frag.to_tunnel if frag.udp else None
            ip = bytes(buf[frag.ip : frag.data])
            held.head = Head(ip, frag.link, tunnel)
            if tunnel is False:  # a UDP datagram that is no tunnel's: not ours to keep
                opened.remove(row)
                return None
        if held.head is not None and held.dg.complete():
            opened.remove(row)
            return held
        self._bound()
        return None

    def _grown(self, row: int, key: bytes) -> Held:
        """The Held of a UDP fragment admitted alone (_admit), now that another fragment of
        its key came: attached to its row, its place in age kept."""
        one = self.open.lone(row)
        frag = Fragment(one.off, one.data, one.more, one.frame)
        dg = Datagram.lone(key, "outer", 4, frag, end=one.end, ts=one.ts)
        held = Held(dg, udp=True, cut=one.cut)
        self.open.attach(row, held, dg.nbytes)
        return held

    def _admit(
        self, t: PacketTable, rows: NDArray[np.int64], f: Frags, sel: NDArray[np.bool_]
    ) -> None:
        """UDP fragments of datagrams that show no first fragment yet, one a key and none
        held (lone_orphans): each opens a datagram, held silently until its ports could
        show (_add), admitted before this batch's other fragments as the fragment audit
        admits its lone ones, as rows of the held table (held.py). The bounds keep what
        _bound keeps when they come one by one, the longest suffix of (the open table,
        these) that fits, so only that is held: a flood of such fragments is thousands a
        batch."""
        data, ip_end, stop = f.data[sel], f.ip_end[sel], f.stop[sel]
        size = np.maximum(stop - data, 0)
        drop = size.shape[0] - newest_kept(size, MAX_OPEN, MAX_BYTES)
        if drop:
            self._evicted(self.open.drain())  # all of them go before any of these
        which = np.flatnonzero(sel)[drop:]
        keys = fragment_keys(t, "outer", t.outer, rows[which])
        data, ip_end, stop, size = data[drop:], ip_end[drop:], stop[drop:], size[drop:]
        off = f.off[which]
        self.open.admit(
            keys,
            key_bytes(keys),
            ts=f.ts[which],
            frame=f.frame[which],
            off=off,
            end=ip_end - data + off,
            more=f.more[which],
            cut=stop < ip_end,
            buf=t.batch.buf,
            data=data,
            size=size,
            frag_cost=FRAG_COST,
        )
        self._bound()

    def _evicted(self, gone: Gone[Held]) -> None:
        """Datagrams a bound dropped; those known to carry a tunnel are reported. (Those
        held alone, as rows, are UDP fragments still waiting to show their ports.)"""
        for held in gone.objs:
            if held.known:
                self._count_bounded(held.dg.frames)

    def _count_bounded(self, frames: list[int]) -> None:
        self.bounded_count += 1
        self.bounded.extend(frames[: max(100 - len(self.bounded), 0)])

    def _bound(self) -> None:
        if self.open.over():
            self._evicted(self.open.evict())  # the oldest

    def _expire(self) -> None:
        # Incomplete: the fragment audit reports them.
        self.open.expire(self.now - TIMEOUT_NS)

    # ----- the reassembled datagrams -----------------------------------------------------
    def _judge(self, r: Rebuilt) -> None:
        """The rebuilt datagrams, in the order they completed, decoded and handed to the
        checks. Rebuilt as bare IPv4 (LINKTYPE_IPV4): a link header's own length field
        (PPPoE, 802.3, NFLOG) would cover the first fragment only. The VLAN ids and where
        the datagram was seen, which key the inner fragment trains, are put back."""
        n = len(r)
        seen = seen_at(r.obs, r.side)
        batch = RecordBatch(
            buf=r.buf,
            offset=r.offset,
            caplen=r.length,
            wirelen=r.length.copy(),
            ts_ns=r.first_ts,
            linktype=np.full(n, LINKTYPE_IPV4, dtype=np.int32),
            frame=r.last_frame,
            direction=seen.direction,
            iface=seen.iface,
            # wire: left False. Only the rebuilt inner layers are checked (inner_only),
            # and nothing of theirs reads it.
        )
        table = decode(batch)
        table.vlan1[:] = r.vlan1
        table.vlan2[:] = r.vlan2
        table.ifindex[:] = seen.ifindex
        table.pkttype[:] = seen.pkttype
        count_tunnels(table, self.tunnel_kinds, rows=table.outer.proto == 17)
        self.rebuilt.append(inner_only(table))
        carried = np.flatnonzero(table.tunnels > 0)
        self.carried_count += int(np.diff(r.bounds)[carried].sum())
        for k in carried.tolist():  # the first 100 frames, in completion order
            if len(self.carried) >= 100:
                break
            self.carried.extend(r.frames_of(k)[: 100 - len(self.carried)])
        for k in carried[:MAX_EVIDENCE].tolist():  # completion order is frame order
            entry = {"frame": int(r.last_frame[k]), "frames": sorted(r.frames_of(k))}
            self._keep_evidence(entry)

    def finish(self) -> None:
        """The end of the input: datagrams still open were never completed (the fragment
        audit reports them); their bytes are let go."""
        self.open.drain()

    def merge_disjoint(self, other: TunnelReassembly, frame_offset: int = 0) -> None:
        """Add a finished reassembly of other outer datagrams (no key in common: fanout
        workers, live/run.py), its frame numbers shifted by `frame_offset`."""
        assert not self.open and not other.open, "merge finished reassemblies"
        self.carried_count += other.carried_count
        self.carried = smallest(sorted(self.carried), [f + frame_offset for f in other.carried])
        self.tunnel_kinds.update(other.tunnel_kinds)
        self.bounded_count += other.bounded_count
        self.bounded = smallest(sorted(self.bounded), [f + frame_offset for f in other.bounded])
        for e in other.evidence:
            frames = [f + frame_offset for f in cast(list[int], e["frames"])]
            self._keep_evidence({"frame": cast(int, e["frame"]) + frame_offset, "frames": frames})
        self.now = max(self.now, other.now)

    def _keep_evidence(self, entry: dict[str, object]) -> None:
        """The MAX_EVIDENCE datagrams that completed first, in frame order, however
        partial reassemblies are merged (one datagram completes in one frame)."""
        bisect.insort(self.evidence, entry, key=lambda e: cast(int, e["frame"]))
        del self.evidence[MAX_EVIDENCE:]

    def take_rebuilt(self) -> list[PacketTable]:
        out, self.rebuilt = self.rebuilt, []
        return out

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        if self.carried_count:
            out.append(
                catalogue_finding(
                    OUTER_FRAGMENTED,
                    self.carried_count,
                    tuple(sorted(self.carried)),
                    "outer",
                    evidence={"reassembled": self.evidence},
                )
            )
        if self.bounded_count:
            out.append(catalogue_finding(BOUNDED, self.bounded_count, tuple(self.bounded), "outer"))
        return out


def _rebuilt(done: list[Held]) -> Rebuilt:
    """The tracker's completed datagrams, rebuilt where they can be (_rebuild): not cut
    by the snap length, not overlapping, not too large."""
    items = [(h, f) for h in done if not h.cut and (f := _rebuild(h)) is not None]
    return from_packets(
        [f for _, f in items],
        [h.dg.first_ts for h, _ in items],
        [h.dg.frames for h, _ in items],
        [h.head.link if h.head is not None else (0, 0, 0, 0) for h, _ in items],
    )


def inner_only(t: PacketTable) -> PacketTable:
    """Blank the outer layer of rebuilt packets (no outer IP, link layer, outer tunnel
    kind or outer anomaly), keeping the outer addresses that key inner fragment trains."""
    t.anom_outer[:] = 0
    t.outer.ver[:] = 0
    t.l2[:] = 0
    t.tunnel[:] = 0
    return t


def _rebuild(held: Held) -> bytes | None:
    """The whole outer IPv4 packet: the first fragment's header (offset 0, MF clear, total
    length and checksum set for the whole, RFC 791 section 3.2), then the fragments' bytes
    in order. None when fragments overlap."""
    dg, head = held.dg, held.head
    if head is None:
        return None
    frags = sorted((f for f in dg.frags if f.data), key=lambda f: f.offset)
    if overlaps(frags):
        return None
    payload = b"".join(f.data for f in frags)
    hdr = bytearray(head.ip)
    total = len(hdr) + len(payload)
    if total > 0xFFFF:
        return None  # too_large: the audit reports it; no IPv4 packet can hold it
    hdr[2:4] = total.to_bytes(2, "big")
    hdr[6:8] = (int.from_bytes(hdr[6:8], "big") & 0x4000).to_bytes(2, "big")  # keep DF
    hdr[10:12] = b"\0\0"
    hdr[10:12] = inet_checksum(bytes(hdr)).to_bytes(2, "big")
    return bytes(hdr) + payload
