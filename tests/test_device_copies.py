"""A Linux cooked capture's copies of one received fragment (checks/copies.py): the same
timestamp and bytes from the IP header on, within WINDOW frames, received. The fragment
audit takes each datagram once and counts the copies as capture.device_copies; anything
else that repeats (a duplicate on the wire, a copy the host sent, a repeat further away,
an Ethernet capture's) is judged as before. A file split at every record gives the same
JSON: the copies a range's first fragments repeat are in the range before."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from netsleuth import cores, craft
from netsleuth.capture import RecordBatch, open_capture, pcap
from netsleuth.capture.writer import write_pcap
from netsleuth.checks.copies import MAX_GAP_NS, WINDOW, DeviceCopies, candidates
from netsleuth.craft.link import PACKET_OUTGOING, sll, sll2
from netsleuth.decode import decode
from netsleuth.report.jsonout import dumps, scan_document
from netsleuth.scale import assembly, scan_parallel
from netsleuth.scan import scan
from netsleuth.steering import parallel
from tests.clirun import invoke
from tests.splitutil import record_starts

S, D = "192.0.2.10", "192.0.2.20"
T0 = 1_700_000_000 * 10**9
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 113, 276


def train(ident: int) -> list[bytes]:
    """A UDP datagram in three fragments."""
    return craft.fragment_ipv4(S, D, bytes(range(256)) * 12, 17, sizes=[1200, 1200, 0], ident=ident)


def other(k: int) -> bytes:
    return craft.ipv4(S, D, craft.udp(S, D, 4000 + k, 53, bytes(40)), 17, ident=50_000 + k)


def capture(
    path: Path, frames: list[tuple[int, bytes]], linktype: int = LINKTYPE_LINUX_SLL
) -> Path:
    with open(path, "wb") as fh:
        write_pcap(fh, frames, linktype=linktype, nanosecond=True)
    return path


def doc(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(dumps(scan_document(scan([str(path)]))))
    return out


def counts(d: dict[str, Any]) -> dict[str, int]:
    return {f["id"]: f["count"] for f in d["findings"]}


def frames_of(d: dict[str, Any], fid: str) -> list[int]:
    return next(f["packets"] for f in d["findings"] if f["id"] == fid)


def bridged(trains: int, between: int = 0) -> list[tuple[int, bytes]]:
    """Each fragment as a host with a bridge captures it with -i any: once from the port,
    then again from the bridge, with the same timestamp; `between` other packets (another
    CPU's) between the two."""
    out: list[tuple[int, bytes]] = []
    for d in range(trains):
        for k, frag in enumerate(train(d + 1)):
            ts = T0 + (3 * d + k) * 1000
            out.append((ts, sll(frag, 0x0800)))
            out += [(ts + 1 + j, sll(other(j), 0x0800)) for j in range(between)]
            out.append((ts, sll(frag, 0x0800, addr=b"\x02" * 6)))  # the bridge's copy
    return out


def test_copies_from_a_second_device_are_taken_once(tmp_path: Path) -> None:
    frames = bridged(4, between=3)
    d = doc(capture(tmp_path / "any.pcap", frames))
    # Each datagram whole and once: nothing about its fragments but the copies.
    assert counts(d) == {"capture.device_copies": 12}
    assert frames_of(d, "capture.device_copies") == [5 + 5 * k for k in range(12)]
    # The same frames, each once: the audit had nothing to say either.
    once = [f for k, f in enumerate(frames) if k % 5 != 4]
    assert counts(doc(capture(tmp_path / "once.pcap", once))) == {}


@pytest.mark.parametrize("case", ["later", "device", "sent", "far", "bytes", "ethernet"])
def test_what_is_no_device_copy(tmp_path: Path, case: str) -> None:
    """A repeat that is no copy of a received packet from another device is judged as
    before: a duplicate fragment more than MAX_GAP_NS later, or more than WINDOW frames
    later, or seen on the same device where the capture names it (SLL2: a SPAN port fed
    twice), or on an Ethernet capture; a conflicting overlap when only the data differs
    (a fragment's bytes are compared whole); and a copy the host sent is the same
    datagram seen going out, another observation."""
    frag = train(7)

    def link(ip: bytes, pkttype: int = 0) -> bytes:
        if case == "ethernet":
            return craft.ether(ip, 0x0800)
        if case == "device":
            return sll2(ip, 0x0800, pkttype=pkttype, ifindex=3)
        return sll(ip, 0x0800, pkttype=pkttype)

    again = {
        "later": (T0 + MAX_GAP_NS + 1, link(frag[0])),
        "device": (T0, link(frag[0])),
        "sent": (T0, link(frag[0], PACKET_OUTGOING)),
        "far": (T0, link(frag[0])),
        "bytes": (T0, link(frag[0][:-1] + bytes([frag[0][-1] ^ 0xFF]))),
        "ethernet": (T0, link(frag[0])),
    }[case]
    fill = [(T0 + 10 + j, link(other(j))) for j in range(WINDOW if case == "far" else 0)]
    rest = [(T0 + 100 + k, link(f)) for k, f in enumerate(frag[1:])]
    frames = [(T0, link(frag[0])), *fill, again, *rest]
    linktype = {"ethernet": 1, "device": LINKTYPE_LINUX_SLL2}.get(case, LINKTYPE_LINUX_SLL)
    found = counts(doc(capture(tmp_path / "c.pcap", frames, linktype)))
    assert "capture.device_copies" not in found
    if case == "sent":
        assert "ipv4.fragment.duplicate" not in found
        assert found["ipv4.fragment.incomplete"] == 1  # the copy that went out, alone
    elif case == "bytes":
        assert found["ipv4.fragment.overlap_conflict"] == 4
    else:
        assert found["ipv4.fragment.duplicate"] == 4


def test_copies_in_sll2_and_a_copy_just_within_the_window(tmp_path: Path) -> None:
    """SLL2 names each copy's device (its ifindex): the same rule finds them. A copy
    WINDOW frames after its original is one; the audit judges the datagram once."""
    frag = train(3)
    frames = [(T0, sll2(frag[0], 0x0800, ifindex=2))]
    frames += [(T0 + 1 + j, sll2(other(j), 0x0800, ifindex=2)) for j in range(WINDOW - 1)]
    frames.append((T0, sll2(frag[0], 0x0800, ifindex=5)))
    frames += [(T0 + 100 + k, sll2(f, 0x0800, ifindex=2)) for k, f in enumerate(frag[1:])]
    d = doc(capture(tmp_path / "sll2.pcap", frames, LINKTYPE_LINUX_SLL2))
    assert counts(d) == {"capture.device_copies": 1}
    assert frames_of(d, "capture.device_copies") == [WINDOW + 1]


def test_a_split_at_every_record_finds_the_same_copies(tmp_path: Path) -> None:
    cap = capture(tmp_path / "any.pcap", bridged(5, between=2))
    whole = dumps(scan_document(scan([str(cap)])))
    starts = record_starts(cap)
    result = scan_parallel(
        [str(cap)],
        tunnel_depth=3,
        progress=None,
        workers=2,
        split_at={str(cap): starts[1:]},
        processes=False,
    )
    assert dumps(scan_document(result)) == whole
    assert '"capture.device_copies"' in whole


def test_copies_across_reader_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of three records: nearly every copy's original is in the batch before
    (DeviceCopies remembers the last WINDOW frames), in one process and split."""
    path = capture(tmp_path / "any.pcap", bridged(5, between=2))
    large = doc(path)
    # The reader's walk, and the split replay of its batches, stop at MAX_RECORDS.
    monkeypatch.setattr(pcap, "MAX_RECORDS", 3)
    monkeypatch.setattr(assembly, "MAX_RECORDS", 3)
    assert len(list(open_capture(str(path)).batches())) == -(-60 // 3)
    d = doc(path)
    assert counts(d) == counts(large) == {"capture.device_copies": 15}
    assert frames_of(d, "capture.device_copies") == frames_of(large, "capture.device_copies")
    whole = dumps(scan_document(scan([str(path)])))
    size = path.stat().st_size
    result = scan_parallel(
        [str(path)],
        tunnel_depth=3,
        progress=None,
        workers=2,
        split_at={str(path): [size // 3, 2 * size // 3]},
        processes=False,
    )
    assert dumps(scan_document(result)) == whole


def test_copies_of_two_packets_of_one_tick_interleaved(tmp_path: Path) -> None:
    """Two fragments of the same timestamp and length, each copied, the copies after
    both (P Q P' Q'): each copy is matched with its own original, not the one just
    before it (helper-39)."""
    frames: list[tuple[int, bytes]] = []
    for n in range(3):
        p, q = train(2 * n + 1), train(2 * n + 2)  # same lengths, other ids
        for k in range(3):
            ts = T0 + (3 * n + k) * 1000
            frames += [(ts, sll(p[k], 0x0800)), (ts, sll(q[k], 0x0800))]
            frames += [(ts, sll(p[k], 0x0800, addr=b"\x02" * 6))]
            frames += [(ts, sll(q[k], 0x0800, addr=b"\x02" * 6))]
    d = doc(capture(tmp_path / "ticks.pcap", frames))
    assert counts(d) == {"capture.device_copies": 18}
    assert frames_of(d, "capture.device_copies") == [k for k in range(1, 37) if k % 4 in (3, 0)]


def test_a_fragment_the_snap_length_cut_is_no_copy(tmp_path: Path) -> None:
    """Same header, same timestamp, data that differs past the snap length: the bytes
    that would tell them apart were not captured, so it is no copy (an overlap an
    attacker sends within one timestamp tick), and the audit says what it can."""
    frag = train(9)
    other_data = frag[0][:-1] + bytes([frag[0][-1] ^ 0xFF])
    frames = [(T0, sll(frag[0], 0x0800)), (T0, sll(other_data, 0x0800))]
    frames += [(T0 + 100 + k, sll(f, 0x0800)) for k, f in enumerate(frag[1:])]
    snap = 216
    head = struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, snap, LINKTYPE_LINUX_SLL)
    records = [
        b"".join([struct.pack("<IIII", *divmod(ts, 10**9), min(len(f), snap), len(f)), f[:snap]])
        for ts, f in frames
    ]
    path = tmp_path / "snapped.pcap"
    path.write_bytes(b"".join([head, *records]))
    found = counts(doc(path))
    assert "capture.device_copies" not in found
    assert found["ipv4.fragment.duplicate"] == 4  # as on Ethernet: the cut bytes unseen
    whole, cut = sll(frag[0], 0x0800), sll(frag[0], 0x0800)[:snap]
    t = decode(RecordBatch.from_packets([whole, cut], linktype=113, wirelen=[len(whole)] * 2))
    assert candidates(t).tolist() == [0]  # the cut one is never compared


def test_what_is_remembered_is_the_datagram_not_the_record() -> None:
    """A record padded far past its IP datagram: the fragments remembered for the next
    batch hold the datagram's bytes alone (16 MiB records, 32 of them, were 512 MB)."""
    frag = train(4)[0]
    t = decode(RecordBatch.from_packets([sll(frag + bytes(1 << 20), 0x0800)], linktype=113))
    copies = DeviceCopies()
    assert copies.observe(t) is None
    assert [len(h) for h in copies.held] == [len(frag)]


STEER = ["steer", "--format", "json", "--queues", "4", "--rps-cpus", "0-3"]


def steer_json(paths: list[Path], cuts: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """steer's JSON of these files, in one process, or cut where `cuts` says (the parts
    one after the other here, through the parallel merge)."""
    if cuts is None:
        out: dict[str, Any] = invoke(*STEER, "--workers", "1", *map(str, paths)).json()
        return out
    real = parallel.steer_parallel

    def forced(p: list[str], models: Any, *, workers: int) -> Any:
        return real(p, models, workers=workers, split_at=cuts, processes=False)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parallel, "steer_parallel", forced)
        mp.setattr(cores, "worth_processes", lambda paths: True)
        got: dict[str, Any] = invoke(*STEER, "--workers", "2", *map(str, paths)).json()
        return got


def arp_request(k: int) -> bytes:
    """Who has 192.0.2.<k>? (RFC 826; Ethernet, IPv4), with the 18 bytes of padding an
    Ethernet frame of it carries to 60 bytes."""
    sha, spa, tpa = bytes.fromhex("020000000001"), bytes([192, 0, 2, 1]), bytes([192, 0, 2, k])
    return b"".join([struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1), sha, spa, bytes(6), tpa, bytes(18)])


def flows_and_copies(n: int) -> list[tuple[int, bytes]]:
    """TCP and UDP packets, IPv4 and IPv6, fragments and ARP requests, each received
    through a bridge (its copy 0-2 packets later, the same or a later timestamp), between
    packets the host sent."""
    out: list[tuple[int, bytes]] = []
    for k in range(n):
        ts = T0 + k * 10_000
        v4 = craft.ipv4(S, D, craft.tcp(S, D, 40000 + k % 7, 443, bytes(k), flags="A"), 6, ident=k)
        v6 = craft.ipv6(
            "2001:db8::1",
            "2001:db8::2",
            craft.udp("2001:db8::1", "2001:db8::2", 5000 + k, 53, bytes(k % 5)),
            17,
        )
        pkts = [
            (v4, 0x0800),
            (v6, 0x86DD),
            *[(f, 0x0800) for f in (train(k) if k % 9 == 0 else [])],
            *([(arp_request(k), 0x0806)] if k % 5 == 0 else []),
        ]
        for j, (ip, proto) in enumerate(pkts):
            out.append((ts + j, sll(ip, proto)))
            if k % 4 == 1:
                out.append((ts + j, sll(other(k), 0x0800, pkttype=PACKET_OUTGOING)))
            out.append((ts + j + (k % 3) * 500, sll(ip, proto, addr=b"\x02" * 6)))
    return out


def test_steer_models_each_received_packet_once(tmp_path: Path) -> None:
    """Loads, flows and hash keys are those of the capture without its copies; the copies
    are counted beside the sent packets; a split at every record gives the same JSON (a
    range's first packets are judged by the parent, with the range before's last)."""
    frames = flows_and_copies(40)
    cap = capture(tmp_path / "any.pcap", frames)
    copies = [k for k, (_, f) in enumerate(frames) if f[6:14] == b"\x02" * 6 + bytes(2)]
    alone = capture(tmp_path / "alone.pcap", [f for k, f in enumerate(frames) if k not in copies])
    with_copies, without = steer_json([cap]), steer_json([alone])
    copy_bytes = sum(len(frames[k][1]) for k in copies)
    assert with_copies["copies"] == {"packets": len(copies), "bytes": copy_bytes}
    assert without["copies"] == {"packets": 0, "bytes": 0}
    for key in ("rss", "rps", "flows", "sent"):
        assert with_copies[key] == without[key], key
    starts = record_starts(cap)
    assert steer_json([cap], {str(cap): starts[1:]}) == with_copies
    assert steer_json([cap], {str(cap): starts[1::7]}) == with_copies


def test_packets_alike_where_first_looked_are_no_copies(tmp_path: Path) -> None:
    """UDP datagrams of one identification and length, checksum 0, the same data: the
    first places DeviceCopies looks at are the same in all, the ports differ. None is a
    copy, each row's match is refused at every distance in turn, and the search ends
    (a round that found only refused matches had started again from the nearest)."""
    frames = [
        (
            T0 + k * 1000,
            sll(
                craft.ipv4(S, D, craft.udp(S, D, 1000 + k, 53, bytes(64), checksum=0), 17, ident=7),
                0x0800,
            ),
        )
        for k in range(100)
    ]
    cap = capture(tmp_path / "alike.pcap", frames)
    assert steer_json([cap])["copies"] == {"packets": 0, "bytes": 0}
