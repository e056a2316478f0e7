"""doctor without a live host: /proc texts of named kernels, wrap-safe rates, ethtool
buffers, bundles (written, read back, hostile), and one triggering and one healthy bundle
per host rule."""

from __future__ import annotations

import io
import json
import struct
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from netsleuth.doctor import doctor_bundle, doctor_root
from netsleuth.errors import InputError
from netsleuth.host.counters import (
    parse_ethtool_stats,
    parse_ring,
    parse_rps_mask,
    parse_softnet,
    queue_packets,
)
from netsleuth.host.rates import d32, rates
from netsleuth.host.sample import parse_sample
from netsleuth.sources import ethtool
from netsleuth.sources.bundle import read_bundle, write_bundle
from netsleuth.sources.interrupts import parse_interrupts
from tests.hostutil import Host, busy

FIX = Path(__file__).parent / "fixtures" / "proc"


# --- softnet_stat across kernels ---------------------------------------------------------


def test_softnet_9_columns_of_2_5() -> None:
    (row,) = parse_softnet((FIX / "softnet_stat-2.5-9col").read_text())
    assert (row.cpu, row.processed, row.received_rps, row.flow_limit) == (0, 0x2A0C14, None, None)


def test_softnet_10_columns_map_onto_online_cpus() -> None:
    text = (FIX / "softnet_stat-3.x-10col").read_text()
    rows = parse_softnet(text, online=[0, 1, 2, 4, 5, 7])  # CPUs 3 and 6 offline
    assert [r.cpu for r in rows] == [0, 1, 2, 4, 5, 7]
    assert rows[0].processed == 0x6DCAD223 and rows[2].time_squeeze == 3
    assert rows[0].received_rps == 0 and rows[0].flow_limit is None


def test_softnet_13_columns_carry_the_cpu_id() -> None:
    rows = parse_softnet((FIX / "softnet_stat-4.18-13col").read_text(), online=[0, 1, 2])
    assert [r.cpu for r in rows] == [0, 1, 3]  # the column wins over the online list
    assert rows[1].dropped == 3 and rows[1].received_rps == 0x12C44


def test_softnet_15_columns_of_6_18() -> None:
    rows = parse_softnet((FIX / "softnet_stat-6.18-15col").read_text())
    assert [r.cpu for r in rows] == [0, 1]
    assert all(r.backlog is not None and r.flow_limit is not None for r in rows)


def test_u32_counters_wrap() -> None:
    assert d32(0xFFFFFFF0, 0x10) == 0x20
    a, b = Host(), Host()
    a.processed[0], b.processed[0] = 0xFFFFFF00, 0x100
    sa, sb = parse_sample(a.snapshot(), 10.0), parse_sample(b.snapshot(), 12.0)
    assert rates(sa, sb).softnet[0]["processed"] == 0x200 / 2


def test_a_64_bit_counter_going_back_is_a_reset_not_a_negative_rate() -> None:
    a, b = Host(dev={"rx_dropped": 500}), Host(dev={"rx_dropped": 3})
    r = rates(parse_sample(a.snapshot(), 0.0), parse_sample(b.snapshot(), 1.0))
    assert "rx_dropped" not in r.devices["eth0"]


# --- interrupts --------------------------------------------------------------------------


def test_interrupts_3_10_layout() -> None:
    cpus, irqs = parse_interrupts((FIX / "interrupts-3.10").read_text())
    assert cpus == [0, 1, 2, 3]
    q = [(i.irq, i.device, i.queue) for i in irqs if i.queue is not None]
    assert q == [("45", "eth0", 0), ("46", "eth0", 1), ("47", "eth0", 2), ("48", "eth0", 3)]
    assert next(i for i in irqs if i.irq == "46").counts == (4021, 98765432, 0, 0)
    assert all(i.irq not in ("NMI", "ERR") or i.queue is None for i in irqs)


def test_interrupts_4_18_layout_with_i40e_and_mlx5_names() -> None:
    _, irqs = parse_interrupts((FIX / "interrupts-4.18").read_text())
    q = {i.irq: (i.device, i.queue) for i in irqs if i.queue is not None}
    assert q["130"] == ("ens1f0", 0) and q["133"] == ("ens1f0", 3)
    assert q["141"] == ("pci:0000:3b:00.0", 1)


def test_interrupts_6_18_virtio() -> None:
    cpus, irqs = parse_interrupts((FIX / "interrupts-6.18").read_text())
    assert cpus == [0, 1]
    names = {i.name for i in irqs}
    assert "virtio0-config" in names
    assert all(i.queue is None for i in irqs if i.name.endswith("-config"))


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("i40e-eth0-TxRx-3", ("eth0", 3)),
        ("eth0-TxRx-3", ("eth0", 3)),
        ("mlx5_comp3@pci:0000:3b:00.0", ("pci:0000:3b:00.0", 3)),
        ("virtio3-input.0", ("virtio3", 0)),
        ("eth0-rx-3", ("eth0", 3)),
        ("ens5-Tx-Rx-2", ("ens5", 2)),
        ("virtio3-config", None),
        ("timer", None),
    ],
)
def test_queue_irq_names(name: str, expect: tuple[str, int] | None) -> None:
    from netsleuth.sources.interrupts import queue_of

    assert queue_of(name) == expect


# --- ethtool -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expect"),
    [
        ("rx_queue_0_packets: 10\nrx_queue_1_packets: 20\nrx_queue_0_bytes: 999", {0: 10, 1: 20}),
        ("rx-0.packets: 5\nrx-1.packets: 6\nrx-1.bytes: 7", {0: 5, 1: 6}),  # i40e
        ("rx0_packets: 1\nrx1_packets: 2\nrx_packets: 3", {0: 1, 1: 2}),  # mlx5
        ("queue_0_rx_cnt: 4\nqueue_1_rx_cnt: 8\nqueue_0_tx_cnt: 9", {0: 4, 1: 8}),  # ena
        ("[0]: rx_ucast_packets: 11\n[1]: rx_ucast_packets: 12", {0: 11, 1: 12}),  # bnxt
        ("rx_drops: 0\nrx_kicks: 5", {}),  # virtio_net on 6.x: no per-queue packets
    ],
)
def test_per_queue_counters_of_common_drivers(lines: str, expect: dict[int, int]) -> None:
    text = "NIC statistics:\n" + "".join(f"     {ln}\n" for ln in lines.splitlines())
    assert queue_packets(parse_ethtool_stats(text)) == expect


def test_ethtool_buffers_decode_as_the_kernel_fills_them() -> None:
    # GSSET_INFO answered with mask bit 1 (ETH_SS_STATS) and 2 strings.
    raw = struct.pack("=IIQI", 0x37, 0, 1 << 1, 2)
    assert ethtool.encode_sset_info()[:16] == struct.pack("=IIQ", 0x37, 0, 2)
    assert ethtool.decode_sset_info(raw) == 2
    assert ethtool.decode_sset_info(struct.pack("=IIQI", 0x37, 0, 0, 0)) is None
    names = struct.pack("=III", 0x1B, 1, 2) + b"rx_packets".ljust(32, b"\0")
    names += b"rx_queue_0_packets".ljust(32, b"\0")
    assert ethtool.decode_gstrings(names) == ["rx_packets", "rx_queue_0_packets"]
    vals = struct.pack("=II", 0x1D, 2) + struct.pack("=2Q", 2**40 + 1, 7)
    assert ethtool.decode_gstats(vals) == [2**40 + 1, 7]
    ring = struct.pack("=9I", 0x10, 4096, 0, 0, 4096, 512, 0, 0, 512)
    r = ethtool.decode_ringparam(ring)
    assert (r["rx"], r["rx_max"]) == (512, 4096)
    assert parse_ring(ethtool.ring_text("eth0", r)) == (512, 4096)
    assert ethtool.ifreq("eth0", ethtool._buffer(b"x"))[:16] == b"eth0".ljust(16, b"\0")
    with pytest.raises(ValueError):
        ethtool.ifreq("a" * 16, ethtool._buffer(b"x"))


def test_rps_masks() -> None:
    assert parse_rps_mask("00000000,0000000f") == [0, 1, 2, 3]
    assert parse_rps_mask("00000001,00000000") == [32]
    assert parse_rps_mask("0") == []


# --- bundles -----------------------------------------------------------------------------


def bundle(tmp_path: Path, a: Host, b: Host, name: str = "b.tar.gz", dt: float = 2.0) -> Path:
    path = tmp_path / name
    write_bundle(path, [(1000.0, a.snapshot()), (1000.0 + dt, b.snapshot())], {"host": "t"})
    return path


@pytest.mark.parametrize("name", ["b.tar.gz", "bdir"])
def test_bundle_round_trip(tmp_path: Path, name: str) -> None:
    a, b = busy(1), busy(2)
    path = bundle(tmp_path, a, b, name)
    got = read_bundle(path)
    assert [t for t, _ in got] == [1000.0, 1002.0]
    assert got[1][1].files == b.snapshot().files


def _tar(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_hostile_bundles_are_refused_without_writing(tmp_path: Path) -> None:
    meta = json.dumps({"format": 1, "samples": [{"dir": "../../etc", "time": 1}]}).encode()
    with pytest.raises(InputError, match="unsafe"):
        read_bundle(_tar(tmp_path, {"meta.json": meta}))
    with pytest.raises(InputError, match=r"meta\.json"):
        read_bundle(_tar(tmp_path, {"samples/0/proc/stat": b"x"}))
    meta = json.dumps({"format": 2, "samples": []}).encode()
    with pytest.raises(InputError, match="format"):
        read_bundle(_tar(tmp_path, {"meta.json": meta}))
    (tmp_path / "junk").write_bytes(b"not a tar")
    with pytest.raises(InputError, match="not a bundle"):
        read_bundle(tmp_path / "junk")
    # A member escaping the archive is ignored, never written anywhere.
    meta = json.dumps({"format": 1, "samples": [{"dir": "samples/0", "time": 1}]}).encode()
    path = _tar(
        tmp_path,
        {"meta.json": meta, "samples/0/proc/stat": b"cpu0 1", "../escape": b"x", "/abs": b"y"},
    )
    ((_, snap),) = read_bundle(path)
    assert snap.files == {"proc/stat": "cpu0 1"}
    assert not (tmp_path.parent / "escape").exists()


# --- rules: one triggering and one healthy bundle each -----------------------------------


def _set(field: str, values: list[int]) -> Callable[[Host], None]:
    def apply(h: Host) -> None:
        setattr(h, field, list(values))

    return apply


def _dev(**kv: int) -> Callable[[Host], None]:
    def apply(h: Host) -> None:
        h.dev.update(kv)

    return apply


def _mib(**kv: int) -> Callable[[Host], None]:
    def apply(h: Host) -> None:
        h.mib.update(kv)

    return apply


def _both(*fns: Callable[[Host], None]) -> Callable[[Host], None]:
    def apply(h: Host) -> None:
        for fn in fns:
            fn(h)

    return apply


def _skew_queues(h: Host) -> None:
    h.queue_packets = [h.queue_packets[0] * 4, *h.queue_packets[1:]]


RULES: dict[str, Callable[[Host], None]] = {
    "host.nic_drop": _dev(rx_missed_errors=5000),
    "host.stack_drop": _dev(rx_dropped=6),
    "host.nohandler": _dev(rx_nohandler=6),
    "host.softnet_backlog_drop": _set("dropped", [0, 0, 900, 0]),
    "host.softnet_squeeze": _set("squeeze", [0, 100, 0, 0]),
    "host.rss_queue_imbalance": _skew_queues,
    "host.rps_imbalance": _both(_set("rps", [0, 90000, 1000, 1000])),
    "host.softirq_hotspot": _set("softirq_ticks", [400, 20, 20, 20]),
    "host.listen_overflow": _mib(ListenOverflows=17, ListenDrops=17),
    "host.reassembly_failures": _mib(ReasmFails=9, ReasmTimeout=9, ReasmReqds=40),
}


@pytest.mark.parametrize("fid", sorted(RULES))
def test_each_rate_rule_fires_on_its_bundle(tmp_path: Path, fid: str) -> None:
    a, b = busy(1), busy(2)
    if fid == "host.rps_imbalance":
        a.rps_mask = b.rps_mask = "f"
    RULES[fid](b)
    ids = [f.id for f in doctor_bundle(bundle(tmp_path, a, b)).findings]
    assert ids == [fid], ids


def test_a_healthy_busy_host_gives_no_finding(tmp_path: Path) -> None:
    a, b = busy(1), busy(2)
    a.rps_mask = b.rps_mask = "f"
    b.rps = [100000] * 4
    d = doctor_bundle(bundle(tmp_path, a, b))
    assert d.findings == []
    assert d.rates is not None and d.rates.softnet[0]["processed"] == 100_000  # 200k in 2 s


def test_irq_imbalance_and_small_rings_from_one_sample(tmp_path: Path) -> None:
    h = busy(1)
    h.queue_irq_cpu = [0, 0, 0, 0]
    h.ring = (256, 4096)
    root = tmp_path / "root"
    for rel, text in h.snapshot().files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    d = doctor_root(root)
    assert sorted(f.id for f in d.findings) == ["host.irq_imbalance", "host.ring_small"]
    ring = next(f for f in d.findings if f.id == "host.ring_small")
    assert ring.severity.label == "info" and ring.evidence["rx_max"] == 4096
    h.queue_irq_cpu, h.ring = [0, 1, 2, 3], (4096, 4096)
    healthy = [(0.0, h.snapshot())]
    from netsleuth.doctor import diagnose

    assert diagnose("x", healthy).findings == []


def test_nic_drop_makes_a_small_ring_a_warning(tmp_path: Path) -> None:
    a, b = busy(1), busy(2)
    a.ring = b.ring = (512, 4096)
    b.dev["rx_missed_errors"] = 100
    d = doctor_bundle(bundle(tmp_path, a, b))
    by_id = {f.id: f for f in d.findings}
    assert by_id["host.ring_small"].severity.label == "warning"
    assert "ethtool -G eth0 rx" in by_id["host.nic_drop"].evidence["next"]
