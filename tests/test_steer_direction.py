"""`steer` models the receive path: NIC RSS and kernel RPS see the packets a host receives,
never the ones it sends. A capture that says which way a packet went (`tcpdump -i any`'s
Linux cooked header, pcapng's epb_flags) has its sent packets left out of every count and
said (`sent`); a capture that says nothing is taken whole. tshark is the oracle for which
frames the file marks as sent."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from netsleuth import craft
from tests.clirun import invoke
from tests.systools import require

ETHERTYPE_IPV4 = 0x0800
PACKET_HOST, PACKET_OUTGOING = 0, 4  # include/uapi/linux/if_packet.h
LINKTYPE_LINUX_SLL = 113
STEER = ["steer", "--format", "json", "--queues", "4", "--rps-cpus", "0-3"]


def flows(n: int) -> list[tuple[bytes, bool]]:
    """n client flows to a server, each one packet in and (a reply, sent) one packet out:
    (IPv4 packet, sent). The replies carry other ports, so counted they would move
    the per-queue loads."""
    out = []
    for k in range(n):
        cli = f"198.51.100.{k % 250 + 1}"
        port = 20000 + k
        ask = craft.tcp(cli, "192.0.2.1", port, 443, b"x" * k, flags="PA")
        out.append((craft.ipv4(cli, "192.0.2.1", ask, 6), False))
        reply = craft.tcp("192.0.2.1", cli, 443, port, b"y" * (3 * k + 1), flags="PA")
        out.append((craft.ipv4("192.0.2.1", cli, reply, 6), True))
    return out


def sll_frame(ip: bytes, sent: bool) -> bytes:
    """LINKTYPE_LINUX_SLL: packet type, ARPHRD_ETHER, address length, address, protocol."""
    kind = PACKET_OUTGOING if sent else PACKET_HOST
    addr = bytes.fromhex("02000000000a0000")
    return b"".join([struct.pack("!HHH", kind, 1, 6), addr, struct.pack("!H", ETHERTYPE_IPV4), ip])


def pcap(path: Path, linktype: int, frames: list[bytes]) -> Path:
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    records = [
        b"".join([struct.pack("<IIII", 1, k, len(f), len(f)), f]) for k, f in enumerate(frames)
    ]
    path.write_bytes(b"".join([head, *records]))
    return path


def block(btype: int, body: bytes) -> bytes:
    size = 12 + len(body)
    return b"".join([struct.pack("<II", btype, size), body, struct.pack("<I", size)])


def pcapng(path: Path, frames: list[tuple[bytes, int]]) -> Path:
    """Ethernet, each frame with epb_flags giving its direction (0 unknown, 1 in, 2 out:
    the pcapng draft, section 4.3.1)."""
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 0))
    blocks = []
    for k, (frame, way) in enumerate(frames):
        pad = bytes(-len(frame) % 4)
        opts = b"".join([struct.pack("<HHI", 2, 4, way), struct.pack("<HH", 0, 0)])
        head = struct.pack("<IIIII", 0, 0, k, len(frame), len(frame))
        blocks.append(block(6, b"".join([head, frame, pad, opts])))
    path.write_bytes(b"".join([shb, idb, *blocks]))
    return path


def tshark_sent(path: Path, field: str, value: int) -> tuple[int, int]:
    """(frames, bytes on the wire) the file marks as sent, as tshark reads it."""
    tshark = require("tshark", "tshark")
    shown = ["-T", "fields", "-e", "frame.len"]
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-Y", f"{field} == {value}", *shown],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return len(out), sum(map(int, out))


def loads(doc: dict[str, object]) -> tuple[list[int], list[int], int, int]:
    rss, rps, flows_ = doc["rss"], doc["rps"], doc["flows"]
    assert isinstance(rss, dict) and isinstance(rps, dict) and isinstance(flows_, dict)
    return (
        [q["packets"] for q in rss["queues"]],
        [c["packets"] for c in rps["cpus"]],
        rss["distinct_hashes"],
        flows_["distinct"],
    )


def test_a_cooked_capture_s_sent_packets_are_left_out(tmp_path: Path) -> None:
    both = flows(60)
    cooked = pcap(tmp_path / "any.pcap", LINKTYPE_LINUX_SLL, [sll_frame(p, s) for p, s in both])
    received = [craft.ether(p, ETHERTYPE_IPV4) for p, s in both if not s]
    alone = pcap(tmp_path / "in.pcap", 1, received)
    sent, sent_bytes = tshark_sent(cooked, "sll.pkttype", PACKET_OUTGOING)
    assert sent == 60

    doc = invoke(*STEER, str(cooked)).json()
    assert doc["sent"] == {"packets": sent, "bytes": sent_bytes}
    assert sum(q["packets"] for q in doc["rss"]["queues"]) == len(both) - sent
    assert any("left out" in note for note in doc["notes"])
    # What remains is what the host received, spread as the received packets alone are.
    assert loads(doc) == loads(invoke(*STEER, str(alone)).json())
    assert invoke(*STEER, str(alone)).json()["sent"] == {"packets": 0, "bytes": 0}

    text = invoke("steer", "--queues", "4", str(cooked)).out
    assert f"{sent:,} packets the capture marks as sent by its host are left out" in text
    assert "netsleuth steer: 60 packets" in text


def test_pcapng_outbound_packets_are_left_out_unknown_ones_kept(tmp_path: Path) -> None:
    both = flows(40)
    # Inbound, outbound, and (every fifth received one) no direction said: kept.
    marked = [
        (craft.ether(p, ETHERTYPE_IPV4), 2 if s else (0 if k % 5 == 0 else 1))
        for k, (p, s) in enumerate(both)
    ]
    path = pcapng(tmp_path / "dir.pcapng", marked)
    sent, sent_bytes = tshark_sent(path, "frame.packet_flags_direction", 2)
    assert sent == 40

    doc = invoke(*STEER, str(path)).json()
    assert doc["sent"] == {"packets": sent, "bytes": sent_bytes}
    alone = pcap(tmp_path / "in.pcap", 1, [f for f, way in marked if way != 2])
    assert loads(doc) == loads(invoke(*STEER, str(alone)).json())


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_sent_count_merges_across_parts(
    tmp_path: Path, workers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts of one file (steer's workers; here its ranges run in this process) add their
    sent counts, as one run counts them."""
    from netsleuth import scale
    from netsleuth.steering import parallel

    both = flows(200)
    cooked = pcap(tmp_path / "any.pcap", LINKTYPE_LINUX_SLL, [sll_frame(p, s) for p, s in both])
    real = parallel.steer_parallel
    third = cooked.stat().st_size // 3

    def forced(p: list[str], models: object, *, workers: int) -> object:
        cut = {str(cooked): [third, 2 * third]}
        return real(p, models, workers=workers, split_at=cut, processes=False)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel, "steer_parallel", forced)
    monkeypatch.setattr(scale, "worth_processes", lambda paths: True)
    doc = invoke(*STEER, "--workers", workers, str(cooked)).json()
    assert doc["sent"]["packets"] == 200
    assert doc["sent"] == invoke(*STEER, "--workers", "1", str(cooked)).json()["sent"]
