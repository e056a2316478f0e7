"""`steer` models the receive path: NIC RSS and kernel RPS see the packets a host receives,
never the ones it sends. A capture that says which way a packet went (`tcpdump -i any`'s
Linux cooked header, pcapng's epb_flags) has its sent packets left out of every count and
said (`sent`); a capture that says nothing is taken whole. tshark is the oracle for which
frames the file marks as sent."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from netsleuth import cores, craft
from netsleuth.steering.model import NicModel
from netsleuth.steering.run import steer
from tests.clirun import invoke
from tests.systools import require

ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6, TEB = 0x0800, 0x0806, 0x86DD, 0x6558
PACKET_HOST, PACKET_OUTGOING = 0, 4  # include/uapi/linux/if_packet.h
LINKTYPE_LINUX_SLL = 113
STEER = ["steer", "--format", "json", "--queues", "4", "--rps-cpus", "0-3"]
Packet = tuple[bytes, int, bool]  # (what follows the link header, its EtherType, sent)


def arp(k: int) -> bytes:
    """An ARP request (RFC 826) for 192.0.2.k."""
    head = struct.pack("!HHBBH", 1, ETHERTYPE_IPV4, 6, 4, 1)
    return b"".join([head, bytes(6), bytes([192, 0, 2, 1]), bytes(6), bytes([192, 0, 2, k])])


def traffic(n: int) -> list[Packet]:
    """n clients' exchanges with a server, each packet received and its answer sent: TCP,
    UDP over IPv6, UDP inside GRE, ARP inside GRE-TEB and bare ARP. Answers carry other
    ports, lengths and kinds, so counted they would move every load, flow and count."""
    srv = "192.0.2.1"
    out: list[Packet] = []
    for k in range(n):
        cli, port = f"198.51.100.{k % 250 + 1}", 20000 + k
        ask = craft.tcp(cli, srv, port, 443, b"x" * k, flags="PA")
        reply = craft.tcp(srv, cli, 443, port, b"y" * (3 * k + 1), flags="PA")
        out += [
            (craft.ipv4(cli, srv, ask, 6), ETHERTYPE_IPV4, False),
            (craft.ipv4(srv, cli, reply, 6), ETHERTYPE_IPV4, True),
        ]
        if k % 3 == 0:
            six = craft.udp("2001:db8::1", "2001:db8::2", port, 53, bytes(k))
            out.append(
                (craft.ipv6("2001:db8::1", "2001:db8::2", six, 17), ETHERTYPE_IPV6, k % 2 == 0)
            )
        if k % 4 == 1:
            inner = craft.ipv4(
                "10.0.0.1",
                f"10.0.1.{k % 250}",
                craft.udp("10.0.0.1", "10.0.1.1", port, 4789, bytes(k)),
                17,
            )
            out.append(
                (
                    craft.ipv4("203.0.113.1", srv, craft.gre(inner, ETHERTYPE_IPV4), 47),
                    ETHERTYPE_IPV4,
                    k % 8 == 1,
                )
            )
        if k % 5 == 2:
            teb = craft.gre(craft.ether(arp(k % 250), ETHERTYPE_ARP), TEB)
            out.append((craft.ipv4("203.0.113.2", srv, teb, 47), ETHERTYPE_IPV4, k % 10 == 2))
            out.append((arp(k % 250), ETHERTYPE_ARP, k % 10 == 7))
    return out


def sll_frame(payload: bytes, ethertype: int, sent: bool) -> bytes:
    """LINKTYPE_LINUX_SLL: packet type, ARPHRD_ETHER, address length, address, protocol."""
    kind = PACKET_OUTGOING if sent else PACKET_HOST
    addr = bytes.fromhex("02000000000a0000")
    return b"".join([struct.pack("!HHH", kind, 1, 6), addr, struct.pack("!H", ethertype), payload])


def cooked(path: Path, packets: list[Packet]) -> Path:
    return pcap(path, LINKTYPE_LINUX_SLL, [sll_frame(p, e, s) for p, e, s in packets])


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


def modelled(doc: dict[str, Any]) -> dict[str, Any]:
    """steer's JSON without what names the inputs and what it left out: the loads, hash
    keys, flows, tunnels, non-IP classes and findings."""
    return {k: v for k, v in doc.items() if k not in ("inputs", "sent", "notes")}


def test_a_cooked_capture_s_sent_packets_are_left_out(tmp_path: Path) -> None:
    both = traffic(60)
    path = cooked(tmp_path / "any.pcap", both)
    alone = cooked(tmp_path / "in.pcap", [p for p in both if not p[2]])
    sent, sent_bytes = tshark_sent(path, "sll.pkttype", PACKET_OUTGOING)
    assert sent == sum(s for _, _, s in both) > 60

    doc = invoke(*STEER, str(path)).json()
    assert doc["sent"] == {"packets": sent, "bytes": sent_bytes}
    assert sum(q["packets"] for q in doc["rss"]["queues"]) == len(both) - sent
    assert any("left out" in note for note in doc["notes"])
    assert doc["flows"]["non_ip"] and doc["flows"]["tunnelled"]["inner_flows"]  # all kinds
    # What remains is what the host received, modelled as the received packets alone are.
    by_itself = invoke(*STEER, str(alone)).json()
    assert modelled(doc) == modelled(by_itself)
    assert by_itself["sent"] == {"packets": 0, "bytes": 0}
    # The tunnel counts (which the JSON does not show; the findings read them) too.
    got, want = (steer([str(p)], NicModel(queues=4), None) for p in (path, alone))
    assert (
        got.tunnels == want.tunnels == {"gre": sum(1 for p in both if p[0][9] == 47 and not p[2])}
    )

    text = invoke("steer", "--queues", "4", str(path)).out
    assert f"{sent:,} packets the capture marks as sent by its host are left out" in text
    assert f"netsleuth steer: {len(both) - sent:,} packets" in text
    page = tmp_path / "steer.html"
    invoke("steer", "--queues", "4", "--html", str(page), str(path))
    assert f"{sent:,} sent by the capturing host, left out" in page.read_text()


def test_pcapng_outbound_packets_are_left_out_unknown_ones_kept(tmp_path: Path) -> None:
    both = [p for p in traffic(40) if p[1] == ETHERTYPE_IPV4]
    # Inbound, outbound, and (every fifth received one) no direction said: kept.
    marked = [
        (craft.ether(p, e), 2 if s else (0 if k % 5 == 0 else 1))
        for k, (p, e, s) in enumerate(both)
    ]
    path = pcapng(tmp_path / "dir.pcapng", marked)
    sent, sent_bytes = tshark_sent(path, "frame.packet_flags_direction", 2)
    assert sent == sum(s for _, _, s in both) >= 40

    doc = invoke(*STEER, str(path)).json()
    assert doc["sent"] == {"packets": sent, "bytes": sent_bytes}
    alone = pcap(tmp_path / "in.pcap", 1, [f for f, way in marked if way != 2])
    assert modelled(doc) == modelled(invoke(*STEER, str(alone)).json())


def test_the_sent_count_merges_across_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file cut in three, its parts steered in worker processes (their state pickled
    back) and merged: the same JSON as one process, the sent count included."""
    from netsleuth.steering import parallel

    path = cooked(tmp_path / "any.pcap", traffic(300))
    real = parallel.steer_parallel
    third = path.stat().st_size // 3

    def forced(p: list[str], models: Any, *, workers: int) -> Any:
        cut = {str(path): [third, 2 * third]}
        return real(p, models, workers=workers, split_at=cut, processes=True)

    whole = invoke(*STEER, "--workers", "1", str(path)).json()
    monkeypatch.setattr(parallel, "steer_parallel", forced)
    monkeypatch.setattr(cores, "worth_processes", lambda paths: True)
    parts = invoke(*STEER, "--workers", "2", str(path)).json()
    assert parts == whole
    assert parts["sent"]["packets"] == sum(s for _, _, s in traffic(300))
