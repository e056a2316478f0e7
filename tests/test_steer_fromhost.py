"""steer --from-host: the SIOCETHTOOL RSS calls on buffers filled as the kernel fills them,
the model they give, and a real veth, which has no RSS and must say so."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.sources import ethtool
from netsleuth.sources.ethtool import HostRss, NoRssError, read_rss
from netsleuth.steering.fromhost import NoModelError, nic_from_rss
from netsleuth.steering.model import NicModel
from netsleuth.steering.toeplitz import MICROSOFT_KEY
from tests import clirun
from tests.clirun import invoke
from tests.fakeethtool import FakeDevice


def filled_rxfh(table: list[int], key: bytes, hfunc: int = 1) -> bytes:
    """struct ethtool_rxfh as the kernel returns it (include/uapi/linux/ethtool.h)."""
    head = struct.pack("=IIIIBB2xI", 0x46, 0, len(table), len(key), hfunc, 0, 0)
    return head + struct.pack(f"={len(table)}I", *table) + key


def test_rxfh_sizes_query_then_table_and_key() -> None:
    ask = ethtool.encode_rxfh()
    assert len(ask) == 24 and struct.unpack_from("=IIII", ask) == (0x46, 0, 0, 0)
    sized = ethtool.encode_rxfh(128, 40)
    assert len(sized) == 24 + 128 * 4 + 40
    table = [i % 6 for i in range(128)]
    n, k, hfunc, got_table, got_key = ethtool.decode_rxfh(filled_rxfh(table, MICROSOFT_KEY))
    assert (n, k, hfunc) == (128, 40, 1)
    assert got_table == table and got_key == MICROSOFT_KEY
    # The size query's answer: sizes only, no room for the data yet.
    assert ethtool.decode_rxfh(struct.pack("=IIIIBB2xI", 0x46, 0, 512, 52, 1, 0, 0))[:3] == (
        512,
        52,
        1,
    )


def test_indir_and_rxnfc_buffers() -> None:
    raw = struct.pack("=II", 0x38, 4) + struct.pack("=4I", 0, 1, 0, 1)
    assert ethtool.decode_rxfh_indir(raw) == (4, [0, 1, 0, 1])
    ask = ethtool.encode_rxnfc(ethtool.ETHTOOL_GRXFH, 0x01)
    assert struct.unpack_from("=IIQ", ask) == (0x29, 0x01, 0) and len(ask) >= 192
    # ixgbe's answer for tcp4: IP SA, IP DA, L4 bytes 0-1 and 2-3 ("sdfn").
    answer = struct.pack("=IIQ", 0x29, 0x01, 0x10 | 0x20 | 0x40 | 0x80).ljust(192, b"\0")
    assert ethtool.decode_rxnfc_data(answer) == 0xF0
    fields = {"tcp4": 0xF0, "udp4": 0x30, "tcp6": 0xF0, "udp6": 0x30}
    assert ethtool.l4_flow_types(fields) == frozenset({"tcp4", "tcp6"})


def test_a_host_rss_becomes_the_model() -> None:
    table = [i % 6 for i in range(128)]
    rss = HostRss(
        "eth9",
        rings=6,
        hfunc=1,
        indir=table,
        key=bytes(range(40)),
        fields={"tcp4": 0xF0, "udp4": 0x30, "tcp6": 0xF0, "udp6": 0x30},
    )
    nic, notes = nic_from_rss(rss, NicModel(parse="inner"))
    assert (nic.queues, nic.key, nic.indir, nic.parse) == (
        6,
        bytes(range(40)),
        tuple(table),
        "inner",
    )
    assert nic.l4 == frozenset({"tcp4", "tcp6"}) and notes == []
    short = HostRss("eth9", rings=4, hfunc=1, indir=[0, 1, 2, 3], key=bytes(range(16)))
    nic, notes = nic_from_rss(short, NicModel())
    assert nic.key == MICROSOFT_KEY and notes == [
        "a 16-byte key is too short to model (IPv6 with ports needs 40): the default key is used"
    ]
    xor = HostRss("eth9", rings=4, hfunc=2, indir=[0, 1, 2, 3])
    nic, notes = nic_from_rss(xor, NicModel())
    assert nic.key == MICROSOFT_KEY and "not Toeplitz" in notes[0]
    with pytest.raises(NoModelError, match="1 RX ring"):
        nic_from_rss(HostRss("eth0", rings=1, hfunc=1), NicModel())


@pytest.mark.privileged
def test_a_real_veth_has_no_rss_and_steer_says_so(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace")
    from pyroute2 import NetNS, netns

    name = f"nsl-rss-{os.getpid()}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("add", ifname="rsa", kind="veth", peer={"ifname": "rsb"})
        netns.pushns(name)
        try:
            with pytest.raises(NoRssError):
                read_rss("rsa")
        finally:
            netns.popns()
        cap = tmp_path / "pptp.pcap"
        with open(cap, "wb") as fh:
            write_pcap(fh, incidents.incident3_pptp(flows=10, packets_per_flow=2))
        ran = clirun.run(
            "steer", "--from-host", "rsa", str(cap), prefix=("ip", "netns", "exec", name), code=3
        )
        lines = ran.err_lines()
        assert len(lines) == 1 and "rsa has no RSS" in lines[0]
    finally:
        netns.remove(name)
    assert name not in netns.listnetns()


def test_steer_reports_the_devices_rings_not_the_queues_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device with 6 RX rings, read through SIOCETHTOOL answered as the kernel answers:
    the JSON's configured queue count and its per-queue loads are the device's 6, whatever
    --queues says (it said 8 before: the option's value was printed, not the model's)."""
    table = [i % 6 for i in range(128)]
    sdfn, sd = 0xF0, 0x30  # ethtool rx-flow-hash: IP SA, IP DA and both port halves / IPs
    dev = FakeDevice(
        rings=6, indir=table, key=bytes(range(40)), fields={1: sdfn, 2: sd, 5: sdfn, 6: sd}
    )
    monkeypatch.setattr(ethtool, "_call", dev)
    cap = tmp_path / "pptp.pcap"
    with open(cap, "wb") as fh:
        write_pcap(fh, incidents.incident3_pptp(flows=10, packets_per_flow=2))
    ran = invoke(
        "steer", "--format", "json", "--from-host", "eth9", "--queues", "8", str(cap), code=0
    )
    doc = ran.json()
    nic = doc["config"]["nic"]
    assert (nic["queues"], nic["from_host"], nic["key"]) == (6, "eth9", bytes(range(40)).hex())
    assert nic["indirection"] == table and nic["l4"] == ["tcp4", "tcp6"]
    assert [q["queue"] for q in doc["rss"]["queues"]] == list(range(6))
    assert sum(q["packets"] for q in doc["rss"]["queues"]) == 20
    assert dev.overflows == []
