"""steer on encapsulations (issue 12): what an outer-only NIC and the flow dissector see
past PPPoE, MPLS and the L2 tags (steering/encaps.py, after net/core/flow_dissector.c)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netsleuth import craft
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import encap
from netsleuth.steering.model import NicModel, RpsModel
from netsleuth.steering.run import steer

CPUS = tuple(range(8))


def flows(n: int) -> list[bytes]:
    return [
        craft.ipv4(
            f"10.1.{k // 250}.{k % 250 + 1}",
            "10.9.0.1",
            craft.udp("10.1.0.1", "10.9.0.1", 1024 + k, 53, b"q"),
            17,
        )
        for k in range(n)
    ]


def run(tmp_path: Path, name: str, frames: list[bytes], rps: bool = True) -> tuple[int, int]:
    """(queues used by an outer-only NIC, CPUs used by RPS on Linux 6.1)."""
    path = tmp_path / name
    with open(path, "wb") as fh:
        write_pcap(fh, [(k * 1000, f) for k, f in enumerate(frames)])
    res = steer([str(path)], NicModel(queues=8), RpsModel((6, 1), CPUS) if rps else None)
    assert res.cpus is not None
    return int(np.count_nonzero(res.queues.packets)), int(np.count_nonzero(res.cpus.packets))


def test_pppoe_one_queue_on_an_outer_only_nic_but_rps_spreads(tmp_path: Path) -> None:
    frames = [craft.ether(encap.pppoe_session(ip, 0x21), 0x8864) for ip in flows(400)]
    queues, cpus = run(tmp_path, "pppoe.pcap", frames)
    assert queues == 1  # no IP header found: no RSS type, indirection entry 0
    assert cpus == 8  # the dissector steps over PPPoE to the IP (flow_dissector.c)


def test_mpls_and_l2_tags_hide_the_ip_from_both(tmp_path: Path) -> None:
    ips = flows(400)
    mpls = [craft.ether(craft.mpls(ip, [100]), 0x8847) for ip in ips]
    assert run(tmp_path, "mpls.pcap", mpls) == (1, 1)  # label only: one key, one CPU
    vntag = [craft.ether(encap.vntag(ip, 0x0800), 0x8926) for ip in ips]
    assert run(tmp_path, "vntag.pcap", vntag) == (1, 1)


def test_plain_flows_spread_on_both(tmp_path: Path) -> None:
    """The control: the same flows without a shim use every queue and CPU."""
    frames = [craft.ether(ip, 0x0800) for ip in flows(400)]
    assert run(tmp_path, "plain.pcap", frames) == (8, 8)
