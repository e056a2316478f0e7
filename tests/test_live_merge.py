"""Merging fanout workers exactly (live/run.py: merge), without the kernel: the frames of a
capture are dealt to two "workers" as PACKET_FANOUT_HASH deals them (by outer address
pair: every fragment of a datagram, inner or outer, to one worker; the rest anyhow), each
runs the live worker's checks over its share in its own batches, and the merged report is
`scan` on the whole capture, with the report's frame numbers (worker 0's frames, then
worker 1's) mapped back to the file's."""

from __future__ import annotations

import itertools
import zlib
from pathlib import Path

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.capture.ring import KernelStats
from netsleuth.capture.writer import write_pcap
from netsleuth.checks import new_checks, observe_all
from netsleuth.checks.fragments import FragmentAudit
from netsleuth.checks.outer_reassembly import TunnelReassembly
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.decode import decode
from netsleuth.findings import MAX_FRAMES, Finding
from netsleuth.live.run import merge
from netsleuth.live.vigil import WorkerResult
from netsleuth.scan import InputResult, Summary, scan

OS, OD = "203.0.113.1", "203.0.113.2"


def frames() -> list[tuple[int, bytes]]:
    """The benchmark mix (fragments, poison trains, tunnels, STP), incident 1's poison
    inside GRE-TEB, and a GRE-TEB packet split over two outer fragments."""
    out = list(mixed_capture(6000, seed=3))
    t = out[-1][0]
    out += [
        (t + 1000 * (k + 1), f) for k, (_, f) in enumerate(incidents.incident1_poison_fragment())
    ]
    inner = craft.ether(craft.ipv4("10.1.0.1", "10.1.0.2", bytes(1400), 17, ident=9), 0x0800)
    parts = craft.fragment_ipv4(OS, OD, craft.gre(inner, 0x6558), 47, sizes=[1000, 0], ident=77)
    extra = [craft.ether(p, 0x0800) for p in parts]
    # VXLAN over outer fragments: only the rebuilt datagram shows the tunnel (summary).
    vx = craft.udp(OS, OD, 40000, 4789, craft.vxlan(inner, vni=5))
    parts = craft.fragment_ipv4(OS, OD, vx, 17, sizes=[800, 0], ident=78)
    extra += [craft.ether(p, 0x0800) for p in parts]
    extra += [f for _, f in incidents.incident2_stp_llc(seconds=2)]
    extra += [f for _, f in incidents.incident3_pptp(flows=5)]
    extra += [craft.ether(bytes(40), 0x88B5), craft.ether(bytes(20), 0x0800)]
    for k in range(3):  # overlapping fragments whose bytes differ; one train left open
        s, d = f"192.0.2.{k}", "198.51.100.9"
        extra += [
            craft.ether(craft.ipv4(s, d, bytes(16), 17, ident=5, flags=1), 0x0800),
            craft.ether(craft.ipv4(s, d, b"\xff" * 16, 17, ident=5, frag_off=8), 0x0800),
            craft.ether(craft.ipv4(s, d, bytes(16), 17, ident=6, flags=1), 0x0800),
        ]
    t = out[-1][0]
    return out + [(t + 1000 * (k + 1), f) for k, f in enumerate(extra)]


def worker_of(frame: bytes) -> int:
    """The outer IPv4 address pair's hash, as the flow dissector keeps fragments together
    (802.1Q tags skipped); anything else by its bytes."""
    at = 14
    while frame[at - 2 : at] == b"\x81\x00":
        at += 4
    if frame[at - 2 : at] == b"\x08\x00":
        return zlib.crc32(frame[at + 12 : at + 20]) & 1
    return zlib.crc32(frame) & 1


def run_worker(share: list[tuple[int, bytes]], batch: int) -> WorkerResult:
    """What Vigil.run does with a worker's frames (frame numbers its own, from 1)."""
    checks, summary, inp = new_checks(), Summary(), InputResult("veth0", format="live")
    for lo in range(0, len(share), batch):
        chunk = share[lo : lo + batch]
        b = RecordBatch.from_packets([f for _, f in chunk], ts_ns=[t for t, _ in chunk])
        b.frame[:] = range(lo + 1, lo + 1 + len(chunk))
        inp.packets += len(chunk)
        t = decode(b)
        summary.observe(t)
        observe_all(checks, t)
    for c in checks:
        if isinstance(c, FragmentAudit | TunnelReassembly):
            c.finish()
    return WorkerResult(inp, summary, checks, KernelStats())


def by_key(findings: list[Finding]) -> dict[tuple[str, str | None], Finding]:
    return {(f.id, f.layer): f for f in findings}


def test_two_workers_merged_are_scan_on_the_file(tmp_path: Path) -> None:
    cap = frames()
    path = tmp_path / "all.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, cap)
    want = by_key(scan([str(path)]).findings)
    assert {"ipv4.fragment.zero_length", "tunnel.outer_fragmented"} <= {k[0] for k in want}
    assert len(want) >= 8

    owner = [worker_of(f) for _, f in cap]
    shares = [[c for c, w in zip(cap, owner, strict=True) if w == k] for k in (0, 1)]
    assert all(len(s) > 1000 for s in shares)
    # the report's frame r (1-based, worker 0's frames first) -> the file's frame
    to_file = [i + 1 for k in (0, 1) for i, w in enumerate(owner) if w == k]
    result = merge("veth0", [run_worker(shares[0], 700), run_worker(shares[1], 1100)], 2, 1.0)
    got = by_key(result.scan.findings)
    assert set(got) == set(want)
    assert result.spans == [
        {"worker": 0, "first_frame": 1, "frames": len(shares[0])},
        {"worker": 1, "first_frame": len(shares[0]) + 1, "frames": len(shares[1])},
    ]
    checked = 0
    for k, w in want.items():
        g = got[k]
        assert (g.count, g.severity, g.input) == (w.count, w.severity, "veth0"), k
        mapped = [to_file[p - 1] for p in g.packets]
        assert g.packets == tuple(sorted(g.packets))
        if w.count <= MAX_FRAMES:  # every flagged frame listed: the same frames
            assert sorted(mapped) == list(w.packets), k
            checked += 1
        else:  # the first 100 in the report's numbering
            assert len(mapped) == MAX_FRAMES
    assert checked >= 5
    # Evidence naming frames maps back too: the reassembled outer datagram.
    ev = got[("tunnel.outer_fragmented", "outer")].evidence["reassembled"]
    want_ev = want[("tunnel.outer_fragmented", "outer")].evidence["reassembled"]
    assert sorted(to_file[e["frame"] - 1] for e in ev) == sorted(e["frame"] for e in want_ev)
    conflict = ("ipv4.fragment.overlap_conflict", "outer")
    dgs = [sorted(to_file[f - 1] for f in d["frames"]) for d in got[conflict].evidence["datagrams"]]
    assert sorted(dgs) == sorted(d["frames"] for d in want[conflict].evidence["datagrams"])
    assert result.scan.inputs[0].packets == len(cap)
    whole = scan([str(path)]).summary
    assert result.scan.summary.l3 == whole.l3
    assert result.scan.summary.tunnels == whole.tunnels and whole.tunnels["vxlan"] >= 1


def test_one_worker_is_scan_numbering_itself(tmp_path: Path) -> None:
    cap = list(itertools.islice(frames(), 3000))
    path = tmp_path / "one.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, cap)
    want = scan([str(path)]).findings
    got = merge("veth0", [run_worker(cap, 512)], 1, 1.0).scan.findings
    assert [(f.id, f.layer, f.count, f.packets) for f in got] == [
        (f.id, f.layer, f.count, f.packets) for f in want
    ]


def test_a_train_the_hash_splits_is_found_and_said() -> None:
    """Incident 1's pair inside GRE-TEB, the zero-length fragment's GRE packet itself cut
    into two outer fragments: the kernel hashes the whole GRE packet on the inner addresses
    and the outer fragments on the outer ones, so they may reach two workers. The
    zero-length fragment is still found; each worker calls its part incomplete, and the
    merged finding says the train was split."""
    inner_s, inner_d = "10.1.0.1", "10.1.0.2"
    seg = craft.tcp(inner_s, inner_d, 40000, 443, bytes(1380), flags="A")
    first = craft.ether(craft.ipv4(inner_s, inner_d, seg[:1400], 6, ident=7, flags=1), 0x0800)
    empty = craft.ipv4(inner_s, inner_d, b"", 6, ident=7, frag_off=1400)
    empty_eth = craft.pad(craft.ether(empty, 0x0800))
    plain = craft.ether(craft.ipv4(OS, OD, craft.gre(first, 0x6558), 47, ident=1), 0x0800)
    parts = craft.fragment_ipv4(OS, OD, craft.gre(empty_eth, 0x6558), 47, sizes=[24, 0], ident=2)
    t0 = 10**18
    w0 = run_worker([(t0, plain)], 10)
    w1 = run_worker(w1_frames(parts, t0), 10)
    got = by_key(merge("veth0", [w0, w1], 2, 1.0).scan.findings)
    assert got[("ipv4.fragment.zero_length", "inner")].packets == (3,)
    incomplete = got[("ipv4.fragment.incomplete", "inner")]
    assert incomplete.count == 2 and incomplete.evidence["split_between_workers"] == 1
    # One worker with all three frames: one complete train, nothing incomplete or split.
    one = merge("veth0", [run_worker([(t0, plain), *w1_frames(parts, t0)], 10)], 1, 1.0)
    assert ("ipv4.fragment.incomplete", "inner") not in by_key(one.scan.findings)


def w1_frames(parts: list[bytes], t0: int) -> list[tuple[int, bytes]]:
    return [(t0 + 1000 * (k + 1), craft.ether(p, 0x0800)) for k, p in enumerate(parts)]
