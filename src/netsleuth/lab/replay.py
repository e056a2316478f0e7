"""`netsleuth lab replay`: frames sent one at a time into the sandbox, each frame's kernel
events and counter deltas collected before the next is sent (trace.py says why that is
exact), judged by verdict.py.

How the lab knows the kernel is done with a frame: the receive path runs inside send()
(veth -> backlog -> NET_RX softirq on bottom-half enable, same task, same CPU; the sender
is pinned to one CPU for the replay). After send() returns, the CPU's backlog length
(softnet_stat) must be 0 and the frame's first event (its arrival, or a drop on the way)
must be in the ring; until both hold, the lab waits (up to SETTLE seconds) and reads
again. A frame that does not settle is reported with a note, never silently attributed.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from netsleuth.drops.rules import judge as judge_drops
from netsleuth.drops.symbols import Kallsyms
from netsleuth.drops.tally import DropGroup
from netsleuth.errors import InputError
from netsleuth.ethertypes import protocol_name
from netsleuth.findings import MAX_FRAMES, Finding
from netsleuth.lab.counters import CounterReader, delta
from netsleuth.lab.frames import MAX_FRAME, Needs, Prepared, prepare, rewrite_inner_dst
from netsleuth.lab.sandbox import (
    Sandbox,
    TornDownWhole,
    inside,
    signals_blocked,
    signals_unwind,
)
from netsleuth.lab.trace import Event, Tracer
from netsleuth.lab.verdict import Named, Result, Skbs, judge
from netsleuth.sources.tracefs import tracefs_session

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000  # --limit: frames replayed one at a time, each settled (seconds each)
MAX_HELD = 256 << 20  # bytes of prepared frames held at once (10 000 x 64 KiB is 640 MiB)
MAX_VLANS = 64  # VLAN devices made for one replay
MAX_VXLAN = 16  # VXLAN devices, one per (VNI, port, local address) the frames need
MAX_FRAME_LIST = 1_000_000  # --frames is held as a set: bounded, whatever is typed
SETTLE = 0.2  # seconds a frame may take to settle before it is reported unsettled


@dataclass(frozen=True, slots=True)
class Record:
    frame: int
    linktype: int
    data: bytes


@dataclass
class Options:
    limit: int = DEFAULT_LIMIT
    frames: frozenset[int] | None = None
    keep_addresses: bool = False
    listen: tuple[tuple[str, int], ...] = ()
    mtu: int = 1500
    rps_cpus: str | None = None


@dataclass
class LabReport:
    results: list[Result]
    seconds: float
    notes: list[str] = field(default_factory=list)
    lost_events: int = 0
    kernel: str = ""
    symbols: Kallsyms = field(default_factory=lambda: Kallsyms.from_text(""))

    @property
    def rate(self) -> float:
        sent = sum(r.verdict != "not_sent" for r in self.results)
        return sent / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "frames": [r.to_json() for r in self.results],
            "seconds": round(self.seconds, 3),
            "lost_events": self.lost_events,
            "notes": self.notes,
        }


def parse_frame_list(text: str) -> frozenset[int]:
    """ "1,4-6" -> {1, 4, 5, 6}; frame numbers start at 1 (as Wireshark's). The caller
    names the option in its error (commands/lab.py)."""
    out: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise ValueError(f"{part[:40]!r} is not a frame number or range") from None
        if lo < 1 or hi < lo:
            raise ValueError(f"{part[:40]!r} is not a range of frame numbers from 1")
        if len(out) + hi - lo >= MAX_FRAME_LIST:
            raise ValueError(f"more than {MAX_FRAME_LIST:,} frames (use --limit)")
        out.update(range(lo, hi + 1))
    if not out:
        raise ValueError("no frame numbers given: e.g. 1,4-6")
    return frozenset(out)


def read_capture(path: str, opts: Options) -> Iterator[Record]:
    """The capture's records, those of --frames only, at most --limit of them."""
    from netsleuth.capture import open_capture

    if not 1 <= opts.limit <= MAX_LIMIT:
        raise InputError("--limit", f"{opts.limit:,} frames: give 1 to {MAX_LIMIT:,}")
    reader = open_capture(path)
    n = 0
    for batch in reader.batches():
        for i in range(len(batch)):
            frame = int(batch.frame[i])
            if opts.frames is not None and frame not in opts.frames:
                continue
            if n >= opts.limit:
                return
            n += 1
            start = int(batch.offset[i])
            size = min(int(batch.caplen[i]), MAX_FRAME + 1)  # longer: refused by prepare()
            yield Record(frame, int(batch.linktype[i]), batch.buf[start : start + size].tobytes())


def _wanted_addresses(needs: Needs) -> list[str]:
    return list(needs.addresses)


def setup_receiver(sb: Sandbox, needs: Needs, opts: Options) -> dict[str, str]:
    """Addresses and tunnel devices; returns device name -> counter prefix."""
    labels = {sb.if_b: ""}
    if not opts.keep_addresses:
        sb.add_addresses(sb.if_b, _wanted_addresses(needs))
    _vxlan_devices(sb, needs, opts, labels)
    _tunnel_devices(sb, needs, labels)
    _vlan_devices(sb, needs, labels)
    for proto_name, port in opts.listen:
        sb.listen(proto_name, port)
    return labels


def _vxlan_devices(sb: Sandbox, needs: Needs, opts: Options, labels: dict[str, str]) -> None:
    vxlans = list(needs.vxlan.items())
    if len(vxlans) > MAX_VXLAN:
        sb.notes.append(
            f"{len(vxlans)} VXLAN (VNI, port, local address) combinations: devices for the "
            f"first {MAX_VXLAN} only; frames of the others get the verdict of a host without "
            "their VXLAN device"
        )
    for i, (need, inner) in enumerate(vxlans[:MAX_VXLAN]):
        attrs: dict[str, Any] = {"vxlan_id": need.vni, "vxlan_port": need.port}
        if not opts.keep_addresses:
            attrs["vxlan_local"] = need.local
        mac = needs.vxlan_mac.get(need)
        if mac is not None:
            attrs["address"] = mac.hex(":")
        t = sb.add_tunnel("vxlan", f"x{i}", **attrs)
        if t.created:
            labels[t.name] = "vxlan:" if i == 0 else f"vxlan{i}:"
            if not opts.keep_addresses:
                sb.add_addresses(t.name, list(inner))
        else:
            sb.notes.append(f"VNI {need.vni}: {t.note}")


def _tunnel_devices(sb: Sandbox, needs: Needs, labels: dict[str, str]) -> None:
    for kind, count in sorted(needs.tunnels.items()):
        dev = {"gre": "gretap", "ipip": "ipip", "sit": "sit", "geneve": "geneve"}[kind]
        attrs = {"geneve_id": 0} if kind == "geneve" else {}
        t = sb.add_tunnel(dev, kind[:2], **attrs)
        if t.created:
            labels[t.name] = f"{kind}:"
        else:
            proto = {"gre": "IP protocol 47", "ipip": "IP protocol 4", "sit": "IP protocol 41"}
            what = proto.get(kind, "UDP port 6081")
            sb.notes.append(
                f"{count} frame(s) carry {kind.upper()}: {t.note}; they get the verdict this "
                f"kernel gives {what} with no tunnel"
            )


def _vlan_devices(sb: Sandbox, needs: Needs, labels: dict[str, str]) -> None:
    vlans = sorted(needs.vlans.items())
    for vid, count in vlans[:MAX_VLANS]:
        # A VLAN device on the receiver's veth for each VID the frames carry, as the host
        # the capture came from had; the addresses on the veth serve it (Linux accepts a
        # local address on any interface of the namespace).
        t = sb.add_tunnel("vlan", f"v{vid}", link=sb.idx_b, vlan_id=vid)
        if t.created:
            labels[t.name] = f"vlan{vid}:"
        else:
            sb.notes.append(
                f"{count} frame(s) carry VLAN {vid}: {t.note} (802.1Q, CONFIG_VLAN_8021Q), so "
                "a tagged frame is for another host (PACKET_OTHERHOST), as on a host without "
                "that VLAN"
            )
    if len(vlans) > MAX_VLANS:
        sb.notes.append(f"{len(vlans)} VLAN IDs: devices for the first {MAX_VLANS} only")


def run(
    records: Iterable[Record],
    opts: Options,
    *,
    progress: Callable[[int, int], None] | None = None,
    setup: Callable[[Sandbox], None] | None = None,
    after: Callable[[Sandbox], None] | None = None,
) -> LabReport:
    """Replay the records; everything created is removed however this returns. `setup`
    runs before the first frame and `after` after the last, both with the sandbox still
    there (tests read the kernel's counters independently through them)."""
    notes: list[str] = []
    with signals_unwind(), Sandbox(mtu=opts.mtu, rps_cpus=opts.rps_cpus) as sb:
        needs = Needs()
        prepared = _prepare(records, sb.mac_b, needs, notes)
        labels = setup_receiver(sb, needs, opts)
        _inner_macs(prepared, needs)
        if setup is not None:
            setup(sb)
        notes += sb.notes
        sock = sb.sender_socket()
        # Teardown with signals blocked (as Sandbox.close): a second SIGINT cannot leak the
        # tracefs instance or the mount.
        with TornDownWhole(tracefs_session()) as fs:
            if fs.mounted_by_us:
                notes.append(f"mounted tracefs at {fs.root} for this run (unmounted after)")
            tracer = Tracer(fs, sb.pid)
            try:
                tracer.start()
                notes += tracer.notes
                reader = CounterReader(labels)
                with inside(sb.ns_b):
                    reader.open()
                try:
                    results, seconds = _loop(
                        prepared, sock=sock, tracer=tracer, reader=reader, sb=sb, progress=progress
                    )
                finally:
                    reader.close()
                if after is not None:
                    after(sb)
                lost = tracer.lost()
            finally:
                with signals_blocked():
                    tracer.stop()
    if lost:
        notes.append(f"the trace ring lost {lost} events: verdicts may miss drops")
    return LabReport(results, seconds, notes, lost, os.uname().release, tracer.symbols)


def _prepare(
    records: Iterable[Record], mac: bytes, needs: Needs, notes: list[str]
) -> list[Prepared]:
    """The frames to send, read lazily so that a record's bytes are dropped once prepared;
    at most MAX_HELD bytes of them (a note says where it stopped)."""
    out: list[Prepared] = []
    held = 0
    for r in records:
        p = prepare(r.frame, r.linktype, r.data, mac, needs)
        held += len(p.data or b"")
        if held > MAX_HELD:
            notes.append(
                f"stopped before frame {r.frame}: the frames before it hold {MAX_HELD >> 20} "
                "MiB, as much as a replay keeps (choose frames with --frames or --limit)"
            )
            break
        out.append(p)
    return out


def _inner_macs(prepared: list[Prepared], needs: Needs) -> None:
    """In place (no second list of frames): VXLAN inner destinations -> the device's MAC."""
    macs = set(needs.vxlan_mac.values())
    if len(macs) != 1:
        return  # one VXLAN device MAC per VNI: inner MACs are left as captured
    mac = next(iter(macs))
    for i, p in enumerate(prepared):
        if p.data:
            prepared[i] = Prepared(p.frame, rewrite_inner_dst(p.data, mac), p.note)


def _loop(
    prepared: list[Prepared],
    *,
    sock: Any,
    tracer: Tracer,
    reader: CounterReader,
    sb: Sandbox,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[Result], float]:
    cpu = min(os.sched_getaffinity(0))
    old_affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    names = Named(tracer.function, tracer.where, tracer.reason_name)
    skbs = Skbs(sb.if_a)
    results: list[Result] = []
    t0 = time.perf_counter()
    try:
        tracer.collect()  # whatever came before the first frame is not a frame's
        before = reader.read()
        for i, p in enumerate(prepared):
            if p.data is None:
                results.append(Result(p.frame, "not_sent", notes=[p.note]))
                continue
            try:
                events, settled = _send_and_settle(sock, p.data, tracer, reader, cpu)
            except OSError as err:
                # The sender's own stack refused it (EMSGSIZE above the MTU): a fact.
                results.append(Result(p.frame, "not_sent", notes=[f"send: {err.strerror}"]))
                continue
            after = reader.read()
            r = judge(p.frame, events, delta(before, after), skbs, names)
            if not settled:
                r.notes.append(f"the kernel had not finished with it after {SETTLE} s")
            results.append(r)
            before = after
            if progress is not None:
                progress(i + 1, len(prepared))
    finally:
        os.sched_setaffinity(0, old_affinity)
    return results, time.perf_counter() - t0


def _send_and_settle(
    sock: Any, data: bytes, tracer: Tracer, reader: CounterReader, cpu: int
) -> tuple[list[Event], bool]:
    tracer.collect()  # the counter reads' own netlink skbs: not the frame's
    sock.send(data)
    events = tracer.collect()
    deadline = time.monotonic() + SETTLE
    while not (events and reader.backlog(cpu) == 0):
        if time.monotonic() > deadline:
            return events, False
        time.sleep(0.001)
        events += tracer.collect()
    return events, True


def replay_file(
    path: str, opts: Options, progress: Callable[[int, int], None] | None = None
) -> LabReport:
    records = read_capture(path, opts)  # read as the frames are prepared: one copy held
    first = next(records, None)
    if first is None:
        why = "none of the --frames are in it" if opts.frames else "it holds no frames"
        raise InputError(path, f"nothing to replay: {why}")
    return run(itertools.chain([first], records), opts, progress=progress)


def findings(report: LabReport, symbols: Kallsyms) -> list[Finding]:
    """One drops.location finding per location x reason x protocol, listing the frames
    (the drops tracer's rules explain the known causes)."""
    by: dict[tuple[int, str | None, int], list[int]] = {}
    for r in report.results:
        if r.verdict == "dropped":
            by.setdefault((r.address, r.reason, r.protocol or 0), []).append(r.frame)
    out = []
    for (addr, reason, proto), frames in by.items():
        loc = symbols.resolve(np.array([addr], dtype=np.uint64))[0]
        g = DropGroup(addr, loc, reason, proto, len(frames), 0.0)
        f = judge_drops([g])[0]
        summary = (
            f"this kernel dropped {len(frames)} frame(s) at {g.where} "
            f"({reason or 'no reason recorded'}), protocol 0x{proto:04x} ({protocol_name(proto)})"
        )
        out.append(replace(f, summary=summary, packets=tuple(frames[:MAX_FRAMES])))
    return out
