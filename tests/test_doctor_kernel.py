"""doctor and collect on the real kernel: two network namespaces joined by a veth pair, RPS
on the receiving side, traffic sent across while doctor samples inside the receiving
namespace (`ip netns exec` remounts /sys for it), and the rates checked against what was
sent; the SIOCETHTOOL readings checked against the real ethtool. Needs root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netsleuth import craft
from tests.netns import Pair, bpdus, veth_pair
from tests.procutil import wait_until_sleeping

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.196.0.1", "10.196.0.2"
NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))


@pytest.fixture
def pair() -> Iterator[Pair]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and AF_PACKET")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is missing (ip netns exec remounts /sys per namespace)")
    with veth_pair("dc", A_IP, B_IP) as p:
        # RPS on the receiving side: every CPU.
        mask = f"{(1 << (os.cpu_count() or 1)) - 1:x}"
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                p.b,
                "sh",
                "-c",
                f"echo {mask} > /sys/class/net/{p.b_if}/queues/rx-0/rps_cpus",
            ],
            check=True,
        )
        yield p


def netsleuth_in(ns: str, *args: str) -> subprocess.Popen[str]:
    """netsleuth inside a namespace; `ip netns exec` remounts /sys for it."""
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, NETSLEUTH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def doctor_in(ns: str, *args: str) -> subprocess.Popen[str]:
    return netsleuth_in(ns, "doctor", "--format", "json", *args)


def collect_in(ns: str, bundle: Path) -> subprocess.Popen[str]:
    """Two samples 3 s apart, as doctor_in(ns, "--samples", "2", "--interval", "3")."""
    return netsleuth_in(ns, "collect", "-o", str(bundle), "--duration", "3", "--interval", "3")


def diagnosis(doc: dict[str, Any]) -> set[tuple[str, int, str | None]]:
    return {(f["id"], f["count"], f["evidence"].get("device")) for f in doc["findings"]}


def bundle_diagnosis(bundle: Path) -> set[tuple[str, int, str | None]]:
    offline = subprocess.run(
        [NETSLEUTH, "doctor", "--bundle", str(bundle), "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return diagnosis(json.loads(offline.stdout))


def test_doctor_sees_what_was_sent_across_a_veth(pair: Pair) -> None:
    n_udp = 3000
    stp = bpdus(20)
    unknown = craft.ether(b"\x00" * 46, 0x88B5, dst=pair.b_mac.hex(":"))  # no handler
    n_unknown = 40

    proc = doctor_in(pair.b, "--samples", "2", "--interval", "3")
    wait_until_sleeping(proc)  # between the two samples: the rates count what comes now
    # 16 flows (destination ports 9-24): RPS sends one flow to one CPU, by its hash;
    # a single flow whose CPU was the sender's own raised no RPS interrupt, and
    # received_rps stayed 0 (a fresh-clone CI run, session 13).
    for i in range(n_udp):
        pair.udp.sendto(b"%d" % i, (B_IP, 9 + i % 16))
    for f in stp:
        pair.raw.send(f)
    for _ in range(n_unknown):
        pair.raw.send(unknown)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    r = doc["rates"]
    dev = r["devices"][pair.b_if]
    received = dev["rx_packets"] * r["seconds"]
    sent = n_udp + len(stp) + n_unknown
    assert sent <= round(received) <= sent + 10  # + IPv6 neighbour discovery, at most
    processed = sum(c["processed"] for c in r["cpus"]) * r["seconds"]
    assert processed >= n_udp
    if (os.cpu_count() or 1) > 1:
        assert sum(c.get("received_rps", 0) for c in r["cpus"]) > 0
    # Frames no handler takes count in rx_dropped on an ordinary device, not rx_nohandler
    # (that is for inactive bond/team slaves); the BPDUs are taken and freed by the
    # built-in LLC/STP code on this kernel, or counted with them where it is absent.
    stack = [f for f in doc["findings"] if f["id"] == "host.stack_drop"]
    assert len(stack) == 1 and stack[0]["evidence"]["device"] == pair.b_if
    assert stack[0]["count"] in (n_unknown, n_unknown + len(stp))
    assert not [f for f in doc["findings"] if f["id"] == "host.nohandler"]


def test_collect_then_doctor_bundle_gives_the_live_diagnosis(pair: Pair, tmp_path: Path) -> None:
    unknown = craft.ether(b"\x00" * 46, 0x88B5, dst=pair.b_mac.hex(":"))
    bundle = tmp_path / "host.tar.gz"

    proc = collect_in(pair.b, bundle)
    wait_until_sleeping(proc)  # its first sample is in the bundle: these come after it
    for _ in range(25):
        pair.raw.send(unknown)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert ("host.stack_drop", 25, pair.b_if) in bundle_diagnosis(bundle)


def test_ethtool_ioctls_agree_with_ethtool(pair: Pair) -> None:
    if shutil.which("ethtool") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ethtool is missing: `make test` installs it (apt-get) when root")
        pytest.skip("ethtool not installed")
    from pyroute2 import netns

    from netsleuth.host.counters import parse_ethtool_stats
    from netsleuth.sources.ethtool import ethtool_texts

    netns.pushns(pair.b)
    try:
        files, notes = ethtool_texts([pair.b_if])
    finally:
        netns.popns()
    assert notes == []
    ours = parse_ethtool_stats(files[f"ethtool/{pair.b_if}/statistics"])
    real = subprocess.run(
        ["ip", "netns", "exec", pair.b, "ethtool", "-S", pair.b_if],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    theirs = parse_ethtool_stats(real)
    assert set(ours) == set(theirs) and len(ours) > 0
    assert ours["peer_ifindex"] == theirs["peer_ifindex"]


def test_live_and_bundle_diagnoses_of_one_window_agree(pair: Pair, tmp_path: Path) -> None:
    """collect and a live doctor sample the same 3 s while frames nobody handles arrive;
    doctor --bundle on the result must say what the live run said."""
    unknown = craft.ether(b"\x00" * 46, 0x88B5, dst=pair.b_mac.hex(":"))
    bundle = tmp_path / "same.tar.gz"

    live = doctor_in(pair.b, "--samples", "2", "--interval", "3")
    coll = collect_in(pair.b, bundle)
    # Both between their two samples (the second of each is 3 s after its first).
    wait_until_sleeping(live)
    wait_until_sleeping(coll)
    for _ in range(30):
        pair.raw.send(unknown)
    live_out, live_err = live.communicate(timeout=60)
    coll.communicate(timeout=60)
    assert live.returncode == 0 and coll.returncode == 0, live_err
    live_d = diagnosis(json.loads(live_out))
    assert ("host.stack_drop", 30, pair.b_if) in live_d
    assert live_d == bundle_diagnosis(bundle)
