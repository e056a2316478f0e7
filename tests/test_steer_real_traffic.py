"""steer on real traffic: frames without IP are a labelled class (not a 0.0.0.0 flow), and
inner flows riding fewer outer flows are said in plain words below the thresholds."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from netsleuth import craft
from netsleuth.capture.writer import write_pcap
from netsleuth.craft.l2 import ieee8023
from tests.clirun import Ran, invoke


def run(tmp_path: Path, frames: list[bytes], *args: str) -> Ran:
    path = tmp_path / "t.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(i * 1000, f) for i, f in enumerate(frames)])
    return invoke("steer", str(path), *args, code=0)


def udp_flows(n: int) -> list[bytes]:
    return [
        craft.ether(
            craft.ipv4(
                "10.0.0.1", "10.0.0.2", craft.udp("10.0.0.1", "10.0.0.2", 1000 + i, 53, b"q"), 17
            ),
            0x0800,
        )
        for i in range(n)
    ]


def test_non_ip_frames_are_a_labelled_class(tmp_path: Path) -> None:
    bpdu = craft.pad(ieee8023(craft.llc(craft.stp_bpdu(), dsap=0x42, ssap=0x42)))
    bpdus = [bpdu] * 10
    arp = [craft.ether(bytes(28), 0x0806)] * 3
    doc = json.loads(run(tmp_path, udp_flows(4) + bpdus + arp, "--format", "json").out)
    flows = doc["flows"]
    assert flows["distinct"] == 4  # the IP flows only
    assert all(f["src"] != "0.0.0.0" for f in flows["heaviest"])
    assert flows["non_ip"] == [
        {
            "class": "802.2 LLC (802.3 length field)",
            "packets": len(bpdus),
            "bytes": sum(len(b) for b in bpdus),
            "rss": "no hash: queue 0",
        },
        {"class": "ARP", "packets": 3, "bytes": 3 * len(arp[0]), "rss": "no hash: queue 0"},
    ]
    text = run(tmp_path, udp_flows(4) + bpdus + arp).out
    assert (
        f"not IP: 802.2 LLC (802.3 length field) {len(bpdus)}, ARP 3 (no RSS hash: queue 0" in text
    )


def test_inner_flows_riding_one_outer_flow_are_named(tmp_path: Path) -> None:
    frames = [
        craft.ether(craft.ipv4("203.0.113.1", "203.0.113.2", craft.gre(f, 0x6558), 47), 0x0800)
        for f in udp_flows(28)
    ]
    doc = json.loads(run(tmp_path, frames, "--format", "json", "--nic", "outer").out)
    assert doc["flows"]["tunnelled"] == {"inner_flows": 28, "outer_flows": 1}
    note = "28 inner flows ride 1 outer flow: an outer-only NIC puts them on one queue"
    assert doc["flows"]["note"] == note
    assert not any(f["id"] == "steer.flow_key_collapse" for f in doc["findings"])  # < 100
    assert note in run(tmp_path, frames, "--nic", "outer").out
    plain = json.loads(run(tmp_path, udp_flows(28), "--format", "json").out)
    assert plain["flows"]["note"] is None
    assert plain["flows"]["tunnelled"] == {"inner_flows": 0, "outer_flows": 0}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_builds_alike(tmp_path: Path) -> None:
    bpdu = craft.pad(ieee8023(craft.llc(craft.stp_bpdu(), dsap=0x42, ssap=0x42)))
    inner = udp_flows(2)
    gre = [
        craft.ether(craft.ipv4("203.0.113.1", "203.0.113.2", craft.gre(f, 0x6558), 47), 0x0800)
        for f in inner
    ]
    path = tmp_path / "b.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(i, f) for i, f in enumerate([bpdu, craft.ether(bytes(28), 0x0806), *gre])])
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.protocols", "-e", "udp.srcport"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    protos = [line.split("\t")[0] for line in out]
    assert protos[0].endswith("llc:stp")
    assert protos[1].endswith("arp")
    assert [p.count(":ip:") for p in protos[2:]] == [2, 2]  # outer and inner IPv4
    assert [line.split("\t")[1] for line in out[2:]] == ["1000", "1001"]  # two inner flows


def test_many_ethertypes_are_each_counted(tmp_path: Path) -> None:
    """300 EtherTypes without an IP decoder, up to 0xFFFF, twice each and 0xFFFF thrice
    (counted in one pass per batch, not one pass per EtherType: random EtherTypes made
    steer 30x slower), named as ethertypes.py names them (0x9000 is loopback, an
    unnamed one by its number)."""
    types = [0x9000 + i for i in range(299)] + [0xFFFF]
    frames = [craft.ether(bytes(46), t) for t in types] * 2 + [craft.ether(bytes(100), 0xFFFF)]
    doc = json.loads(run(tmp_path, frames, "--format", "json").out)
    got = {c["class"]: (c["packets"], c["bytes"]) for c in doc["flows"]["non_ip"]}
    assert len(got) == 300
    assert sum(p for p, _ in got.values()) == len(frames)
    assert sum(b for _, b in got.values()) == sum(len(f) for f in frames)
    assert got["0xffff"] == (3, 2 * 60 + 114)
    assert got["loopback"] == (2, 120)
