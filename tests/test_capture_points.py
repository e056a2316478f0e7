"""One datagram seen at two points of one capture (two interfaces of a pcapng file, `tcpdump
-i any` seeing it arrive and leave): two observations, each a whole datagram, never one
datagram whose every fragment came twice. The same fragments twice at one point still are
duplicates. tshark is the oracle for where the file says each packet was seen."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netsleuth import craft
from netsleuth.capture import open_capture
from netsleuth.capture.pcapng import PcapngReader
from netsleuth.capture.source import ByteSource
from netsleuth.capture.split_pcapng import range_starts
from netsleuth.craft.link import nflog_tlv
from netsleuth.report.export import export_evidence
from netsleuth.report.jsonout import scan_document
from netsleuth.scan import scan
from tests.clirun import invoke
from tests.splitutil import one, split

S, D = "192.0.2.10", "198.51.100.20"
ETHERTYPE_IPV4 = 0x0800
PACKET_OTHERHOST, PACKET_OUTGOING = 3, 4  # include/uapi/linux/if_packet.h


def fragments(ident: int = 77) -> list[bytes]:
    payload = craft.udp(S, D, 5000, 9, bytes(range(256)) * 8)
    return craft.fragment_ipv4(S, D, payload, 17, sizes=[1024, 1024], ident=ident)


def block(btype: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return b"".join([struct.pack("<II", btype, size), body, struct.pack("<I", size)])


def epb(iface: int, ts: int, frame: bytes) -> bytes:
    head = struct.pack("<IIIII", iface, 0, ts, len(frame), len(frame))
    return block(6, b"".join([head, frame, bytes(-len(frame) % 4)]))


def two_interfaces(path: Path, ifaces: list[int]) -> Path:
    """A pcapng file of two Ethernet interfaces: the datagram's two fragments, each seen on
    ifaces[k] in turn (one microsecond apart)."""
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 0))
    frames = [craft.ether(f, ETHERTYPE_IPV4) for f in fragments()]
    seen = [(frame, iface) for frame in frames for iface in ifaces]
    blocks = [epb(iface, k, frame) for k, (frame, iface) in enumerate(seen)]
    path.write_bytes(b"".join([shb, idb, idb, *blocks]))
    return path


def sll(ip: bytes, pkttype: int) -> bytes:
    """LINKTYPE_LINUX_SLL: packet type, ARPHRD_ETHER, address length, address, protocol."""
    head = struct.pack("!HHH8sH", pkttype, 1, 6, bytes.fromhex("02000000000a"), ETHERTYPE_IPV4)
    return head + ip


def sll2(ip: bytes, ifindex: int, pkttype: int) -> bytes:
    """LINKTYPE_LINUX_SLL2: protocol, reserved, interface index, ARPHRD_ETHER, packet type,
    address length, address."""
    addr = bytes.fromhex("02000000000a")
    return struct.pack("!HHIHBB8s", ETHERTYPE_IPV4, 0, ifindex, 1, pkttype, 6, addr) + ip


def cooked(path: Path, linktype: int, frames: list[bytes]) -> Path:
    with path.open("wb") as fh:
        craft_header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
        fh.write(craft_header)
        for k, frame in enumerate(frames):
            fh.write(struct.pack("<IIII", 0, k, len(frame), len(frame)) + frame)
    return path


def tshark_fields(tshark: str, path: Path, *fields: str) -> list[tuple[int, ...]]:
    """Each frame's fields as tshark reads them, as integers (it prints some in hex)."""
    cmd = [tshark, "-r", str(path), "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [tuple(int(x, 0) for x in line.split("\t")) for line in out.splitlines()]


def fragment_findings(path: Path, workers: int = 1) -> dict[str, int]:
    doc = scan_document(scan([str(path)], workers=workers))
    return {
        f["id"]: f["count"] for f in doc["findings"] if f["id"].startswith(("ipv4.frag", "frag"))
    }


def test_one_datagram_on_two_pcapng_interfaces_is_two_whole_datagrams(tmp_path: Path) -> None:
    path = two_interfaces(tmp_path / "two.pcapng", [0, 1])
    [batch] = list(open_capture(str(path)).batches())
    assert batch.iface is not None and batch.iface.tolist() == [0, 1, 0, 1]
    assert fragment_findings(path) == {}


def test_the_same_fragments_twice_on_one_interface_are_duplicates(tmp_path: Path) -> None:
    # The control: without where each was seen, this is what both captures above look like
    # (the first copy of the last fragment completes the datagram, as in Linux; its second
    # opens another that never completes). Counts are frames.
    path = two_interfaces(tmp_path / "one.pcapng", [1, 1])
    assert fragment_findings(path) == {
        "ipv4.fragment.duplicate": 3,
        "ipv4.fragment.incomplete": 1,
    }


def test_tshark_reads_the_same_interface_ids(tmp_path: Path, tshark: str) -> None:
    path = two_interfaces(tmp_path / "two.pcapng", [1, 0])
    out = tshark_fields(tshark, path, "frame.interface_id")
    [batch] = list(open_capture(str(path)).batches())
    assert batch.iface is not None
    assert [x for (x,) in out] == batch.iface.tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize(
    ("kinds", "duplicate"),
    [((PACKET_OTHERHOST, PACKET_OUTGOING), False), ((PACKET_OUTGOING, PACKET_OUTGOING), True)],
)
def test_tcpdump_any_sees_a_forwarded_datagram_arrive_and_leave(
    tmp_path: Path, kinds: tuple[int, int], duplicate: bool
) -> None:
    """SLL v1 has no interface index: the packet type (in on one port, out of another)
    tells the two sightings of a forwarded or bridged datagram apart."""
    frames = [sll(f, kind) for f in fragments() for kind in kinds]
    path = cooked(tmp_path / "any.pcap", 113, frames)
    found = fragment_findings(path)
    assert found == (
        {"ipv4.fragment.duplicate": 3, "ipv4.fragment.incomplete": 1} if duplicate else {}
    )


def test_sll2_interface_index_keeps_two_interfaces_apart(tmp_path: Path, tshark: str) -> None:
    frames = [sll2(f, ifindex, 0) for f in fragments() for ifindex in (2, 7)]
    path = cooked(tmp_path / "any2.pcap", 276, frames)
    assert fragment_findings(path) == {}
    assert tshark_fields(tshark, path, "sll.ifindex", "sll.pkttype") == [(2, 0), (7, 0)] * 2


def test_the_split_scan_keys_fragments_by_interface_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range's fragments go to the parent with where they were seen (scale/handover.py):
    with reader buffers of one packet block, the file is cut where each buffer starts, and
    the JSON is the one-process JSON (which holds no fragment finding)."""
    real = PcapngReader.__init__

    def small(self: PcapngReader, source: ByteSource, **kw: Any) -> None:
        real(self, source, **{**kw, "chunk_bytes": 2 * 1024})

    monkeypatch.setattr(PcapngReader, "__init__", small)
    path = two_interfaces(tmp_path / "two.pcapng", [0, 1])
    whole = one(path)
    assert '"ipv4.fragment' not in whole
    cuts = [at for at, _ in range_starts(str(path), list(range(1, path.stat().st_size)))]
    assert len(cuts) == 3  # a range starts at every packet block after the first
    for at in cuts:
        assert split(path, [at]) == whole


def test_evidence_keeps_each_packets_interface_and_direction(tmp_path: Path, tshark: str) -> None:
    """The first fragment of a datagram, seen inbound on one interface and outbound on the
    other, its last fragment lost: two incomplete datagrams. The evidence file holds both
    frames on two interfaces with their directions, so scanning it says the same (written on
    one interface without flags, they read as one datagram's fragment twice: duplicate)."""
    first = craft.ether(fragments()[0], ETHERTYPE_IPV4)
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 0))
    flags = [struct.pack("<HHI", 2, 4, d) + struct.pack("<HH", 0, 0) for d in (1, 2)]
    blocks = [
        block(6, b"".join([epb(k, k, first)[8:-4], flags[k]])) for k in (0, 1)
    ]  # an EPB's body, then its epb_flags option
    path = tmp_path / "lost.pcapng"
    path.write_bytes(b"".join([shb, idb, idb, *blocks]))
    result = scan([str(path)])
    assert {f.id: f.count for f in result.findings} == {"ipv4.fragment.incomplete": 2}
    out = tmp_path / "evidence.pcapng"
    assert export_evidence(result.inputs, result.findings, str(out)).packets == 2
    again = scan([str(out)])
    assert {f.id: f.count for f in again.findings} == {"ipv4.fragment.incomplete": 2}
    fields = ("frame.interface_id", "frame.packet_flags_direction")
    # Interfaces 0 and 1; inbound, outbound.
    assert tshark_fields(tshark, out, *fields) == [(0, 1), (1, 2)]


def test_parts_of_a_batch_join_with_an_absent_column_as_zeros() -> None:
    """pcapng._merge joins a batch's parts; a part whose format says nothing of interface
    or direction (None) reads as 0 beside one that does, and None stays None alone."""
    from netsleuth.capture import RecordBatch
    from netsleuth.capture.pcapng import _merge

    plain = RecordBatch.from_packets([b"ab", b"cd"])
    told = dataclasses.replace(
        plain, iface=np.array([3, 4], np.uint32), direction=np.array([1, 2], np.uint8)
    )
    both = _merge([plain, told])
    assert both.iface is not None and both.iface.tolist() == [0, 0, 3, 4]
    assert both.direction is not None and both.direction.tolist() == [0, 0, 1, 2]
    assert _merge([plain, plain]).iface is None


def pktap(packet: bytes, *, name: bytes, flags: int) -> bytes:
    """A PKTAP header (xnu's struct pktap_header, 108 bytes, little-endian) before an
    Ethernet frame: length, record type 1, DLT_EN10MB, the interface name, flags, then the
    process fields and the interface type and unit, left 0 as macOS leaves them (tcpdump's
    LINKTYPE_PKTAP.pcap)."""
    head = struct.pack("<III24sI", 108, 1, 1, name, flags)
    return b"".join([head, bytes(108 - len(head)), packet])


@pytest.mark.parametrize(
    ("points", "duplicate"),
    [
        (((b"en0", 1), (b"bridge100", 2)), False),
        (((b"en0", 1), (b"awdl0", 1)), False),
        (((b"en0", 1), (b"en0", 1)), True),
    ],
)
def test_macos_any_sees_a_bridged_datagram_in_on_en0_and_out_on_bridge100(
    tmp_path: Path, tshark: str, points: tuple[tuple[bytes, int], ...], duplicate: bool
) -> None:
    frames = [
        pktap(craft.ether(f, ETHERTYPE_IPV4), name=name, flags=flags)
        for f in fragments()
        for name, flags in points
    ]
    path = cooked(tmp_path / "pktap.pcap", 258, frames)
    cmd = [tshark, "-r", str(path), "-T", "fields", "-e", "pktap.ifname", "-e", "pktap.flags"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [tuple(line.split("\t")) for line in out] == [
        (name.decode(), f"0x{flags:08x}") for name, flags in points
    ] * 2
    found = fragment_findings(path)
    assert found == (
        {"ipv4.fragment.duplicate": 3, "ipv4.fragment.incomplete": 1} if duplicate else {}
    )


def erf_eth(ts: int, frame: bytes, port: int) -> bytes:
    """An ERF Ethernet record (type 2) on a DAG port (the flags' low two bits): header,
    the 2-byte Ethernet subheader, the frame, zero padding to 8 bytes."""
    body = bytes(2) + frame
    body += bytes(-(16 + len(body)) % 8)
    head = struct.pack("<Q", ts << 32) + bytes([2, port])
    return head + struct.pack(">HHH", 16 + len(body), 0, len(frame)) + body


@pytest.mark.parametrize(("ports", "duplicate"), [((0, 1), False), ((1, 1), True)])
def test_two_dag_ports_are_two_points(
    tmp_path: Path, tshark: str, ports: tuple[int, int], duplicate: bool
) -> None:
    seen = [(craft.ether(f, ETHERTYPE_IPV4), p) for f in fragments() for p in ports]
    path = tmp_path / "dag.erf"
    path.write_bytes(b"".join(erf_eth(k + 1, f, p) for k, (f, p) in enumerate(seen)))
    assert tshark_fields(tshark, path, "erf.flags.cap") == [(p,) for _, p in seen]
    found = fragment_findings(path)
    assert found == (
        {"ipv4.fragment.duplicate": 3, "ipv4.fragment.incomplete": 1} if duplicate else {}
    )


@pytest.mark.parametrize(
    ("points", "duplicate"),
    [(((2, 0), (3, 1)), False), (((2, 0), (2, 256)), False), (((2, 0), (2, 0)), True)],
)
def test_solaris_ipnet_interface_and_hook_are_the_point(
    tmp_path: Path, tshark: str, points: tuple[tuple[int, int], ...], duplicate: bool
) -> None:
    """An ipnet capture of a router: in on interface 2 (hook inbound, 0), out on 3
    (outbound, 1); or in and out of interface 2, the outbound hook in a little-endian host's
    order (256, as tcpdump's e1000g.pcap holds it); the same interface and hook twice is a
    duplicate."""
    frames = [
        struct.pack("!BBHIIIII", 1, 2, hook, len(f), ifindex, 0, 0, 0) + f
        for f in fragments()
        for ifindex, hook in points
    ]
    path = cooked(tmp_path / "ipnet.pcap", 226, frames)
    assert tshark_fields(tshark, path, "ipnet.ifindex", "ipnet.htype") == list(points) * 2
    found = fragment_findings(path)
    assert found == (
        {"ipv4.fragment.duplicate": 3, "ipv4.fragment.incomplete": 1} if duplicate else {}
    )


def nflog(packet: bytes, hook: int) -> bytes:
    """LINKTYPE_NFLOG: AF_INET, version 0, resource id, then (little-endian TLVs, as an x86
    host writes them) NFULA_PACKET_HDR (hardware protocol, hook, pad) and NFULA_PAYLOAD."""
    hdr = nflog_tlv(1, struct.pack("!HBB", ETHERTYPE_IPV4, hook, 0))
    return struct.pack("!BBH", 2, 0, 1) + hdr + nflog_tlv(9, packet)


@pytest.mark.parametrize(("hooks", "duplicate"), [((0, 4), False), ((2, 4), False), ((4, 4), True)])
def test_nflog_hooks_are_the_point(
    tmp_path: Path, tshark: str, hooks: tuple[int, int], duplicate: bool
) -> None:
    """An NFLOG rule in PREROUTING (or FORWARD) and one in POSTROUTING log a forwarded
    datagram as it arrives and as it leaves: two sightings, told apart by the hook; the
    same hook twice is a duplicate."""
    frames = [nflog(f, hook) for f in fragments() for hook in hooks]
    path = cooked(tmp_path / "nflog.pcap", 239, frames)
    assert tshark_fields(tshark, path, "nflog.hook") == [(h,) for h in hooks] * 2
    found = fragment_findings(path)
    assert found == (
        {"ipv4.fragment.duplicate": 3, "ipv4.fragment.incomplete": 1} if duplicate else {}
    )
    # The output hooks' copies are sent by this host: steer leaves them out.
    doc = invoke("steer", "--format", "json", "--queues", "4", str(path)).json()
    assert doc["sent"]["packets"] == sum(h == 4 for h in hooks) * 2
