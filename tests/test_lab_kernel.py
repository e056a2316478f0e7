"""The lab on the real kernel (root): verdicts and counters of the issue's mixed capture,
checked against the namespace's counters read independently (`ip netns exec ... cat`);
nothing left behind after SIGINT/SIGTERM; stale namespaces of dead owners removed."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import ether, gre, ipv4, llc, pad, stp_bpdu, tcp, udp
from netsleuth.craft.l2 import ieee8023
from netsleuth.lab.replay import Options, Record, run
from netsleuth.lab.sandbox import Sandbox

pytestmark = pytest.mark.privileged

A, B = "192.0.2.1", "192.0.2.80"
PORT = 8080


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, tracefs, AF_PACKET)")
    if not Path("/proc/self/ns/net").exists():
        pytest.skip("no network namespaces in this kernel")


def _kernel_has(option: str) -> bool | None:
    try:
        text = gzip.decompress(Path("/proc/config.gz").read_bytes()).decode()
    except OSError:
        return None
    return f"\n{option}=y" in text or f"\n{option}=m" in text


def mixed() -> list[bytes]:
    """The issue's "Done when" capture, one frame of each kind."""
    inner = ether(ipv4(A, B, udp(A, B, 1, 2, b"in"), 17), 0x0800)
    return [
        ether(ipv4(A, B, udp(A, B, 1234, 9, b"closed"), 17), 0x0800),
        pad(ieee8023(llc(stp_bpdu(), dsap=0x42, ssap=0x42))),
        ether(ipv4(A, B, tcp(A, B, 40000, PORT, flags="S", seq=1), 6), 0x0800),
        # offset 1400, MF=0, no payload: incident 1's second fragment, alone
        pad(ether(ipv4(A, B, b"", 6, ident=0x5866, frag_off=1400), 0x0800)),
        ether(ipv4(A, B, udp(A, B, 1234, 9, b"bad"), 17, checksum=0x1234), 0x0800),
        ether(ipv4("198.51.100.1", "198.51.100.2", gre(inner, 0x6558, key=5), 47), 0x0800),
    ]


def _independent(sb: Sandbox) -> dict[str, int]:
    """The receiver's counters through `ip netns exec` (another process, its own sysfs)."""
    out: dict[str, int] = {}
    for f in ("snmp", "netstat"):
        text = subprocess.run(
            ["ip", "netns", "exec", sb.ns_b, "cat", f"/proc/net/{f}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        for head, vals in zip(text[0::2], text[1::2], strict=True):
            group, names = head.split(":")
            for name, v in zip(names.split(), vals.split(":")[1].split(), strict=True):
                key = name if group in ("Ip", "IpExt", "TcpExt") else f"{group}.{name}"
                out[key] = int(v)
    for stat in ("rx_dropped", "rx_nohandler"):
        path = f"/sys/class/net/{sb.if_b}/statistics/{stat}"
        value = subprocess.run(
            ["ip", "netns", "exec", sb.ns_b, "cat", path], check=True, capture_output=True
        ).stdout
        out[stat] = int(value)
    return out


def test_mixed_capture_verdicts_and_counters() -> None:
    _require()
    reads: list[dict[str, int]] = []
    gretap = _kernel_has("CONFIG_NET_IPGRE")
    records = [Record(i + 1, 1, f) for i, f in enumerate(mixed())]
    report = run(
        records,
        Options(listen=(("tcp", PORT),)),
        setup=lambda sb: reads.append(_independent(sb)),
        after=lambda sb: reads.append(_independent(sb)),
    )
    r = {x.frame: x for x in report.results}
    assert (r[1].verdict, r[1].location, r[1].reason) == ("dropped", "__udp4_lib_rcv", "NO_SOCKET")
    assert r[1].counters["Udp.NoPorts"] == 1
    assert r[1].replies == 1  # the ICMP port unreachable came back to the sender
    # 802.3/LLC STP: no protocol handler, or (a kernel with the bridge's STP code, as here)
    # taken by llc_rcv and freed in stp_pdu_rcv; either way dropped with protocol 0x0004.
    assert (r[2].verdict, r[2].protocol) == ("dropped", 0x0004)
    assert r[2].location in {"stp_pdu_rcv", "llc_rcv", "__netif_receive_skb_core"}
    assert (r[3].verdict, r[3].counters["Tcp.InSegs"], r[3].replies) == ("delivered", 1, 1)
    assert r[3].consumed_at == "tcp_rcv_state_process"
    assert (r[4].verdict, r[4].location) == ("dropped", "ip_defrag")
    assert r[4].counters["ReasmFails"] == 1
    assert (r[5].verdict, r[5].location, r[5].reason) == ("dropped", "ip_rcv_core", "IP_CSUM")
    assert r[5].counters["InCsumErrors"] == 1 and r[5].counters["InHdrErrors"] == 1
    if gretap is False:
        assert (r[6].verdict, r[6].reason) == ("dropped", "IP_NOPROTO")
        assert r[6].counters["InUnknownProtos"] == 1
        assert any("carry GRE" in n and "no gretap device" in n for n in report.notes)
    # Every counter a frame moved, summed over the frames, equals the independent read's
    # difference across the replay (and nothing moved that no frame owns).
    before, after = reads
    moved = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    summed: dict[str, int] = {}
    for x in report.results:
        for k, v in x.counters.items():
            summed[k] = summed.get(k, 0) + v
    assert {k: v for k, v in summed.items() if k in after} == moved


def test_cli_json_on_the_mixed_capture(tmp_path: Path) -> None:
    _require()
    cap = tmp_path / "mixed.pcap"
    with cap.open("wb") as fh:
        write_pcap(fh, [(i * 1000, f) for i, f in enumerate(mixed())])
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "netsleuth",
            "lab",
            "replay",
            str(cap),
            "--frames",
            "1,4-5",
            "--format",
            "json",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    import json

    doc = json.loads(p.stdout)
    assert doc["command"] == "lab replay"
    got = [(f["frame"], f["verdict"], f.get("location")) for f in doc["frames"]]
    assert got == [
        (1, "dropped", "__udp4_lib_rcv"),
        (4, "dropped", "ip_defrag"),
        (5, "dropped", "ip_rcv_core"),
    ]
    assert {f["id"] for f in doc["findings"]} == {"drops.location"}


def _tracefs_instances() -> list[str]:
    """Instance names, through a private tracefs mount (instances are global)."""
    d = Path(f"/tmp/netsleuth-test-tracefs-{os.getpid()}")
    d.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tracefs", "nodev", str(d)], check=True)
    try:
        return sorted(p.name for p in (d / "instances").iterdir())
    finally:
        subprocess.run(["umount", str(d)], check=True)
        d.rmdir()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_leaves_nothing_behind(tmp_path: Path, sig: signal.Signals) -> None:
    _require()
    cap = tmp_path / "many.pcap"
    frame = ether(ipv4(A, B, udp(A, B, 1234, 9, b"x"), 17), 0x0800)
    with cap.open("wb") as fh:
        write_pcap(fh, [(i, frame) for i in range(200_000)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "netsleuth", "lab", "replay", str(cap), "--limit", "200000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ns = Path(f"/run/netns/netsleuth-{proc.pid}-a")
    try:
        deadline = time.monotonic() + 30
        while not ns.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert ns.exists(), "the lab never created its namespace"
        time.sleep(1.5)  # into the replay: tracefs instance and sockets exist by now
        assert proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    left = [p.name for p in Path("/run/netns").iterdir() if f"-{proc.pid}-" in p.name]
    assert left == []
    assert f"netsleuth-{proc.pid}" not in _tracefs_instances()


def test_stale_namespaces_of_dead_owners_removed_live_kept() -> None:
    _require()
    from pyroute2 import netns

    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "netsleuth"])
    stale, kept = f"netsleuth-{dead.pid}-a", f"netsleuth-{live.pid}-b"
    netns.create(stale)
    netns.create(kept)
    try:
        frame = ether(ipv4(A, B, udp(A, B, 1234, 9, b"x"), 17), 0x0800)
        report = run([Record(1, 1, frame)], Options())
        names = os.listdir("/run/netns")
        assert stale not in names
        assert kept in names
        assert f"removed stale namespace {stale} (its process is gone)" in report.notes
    finally:
        live.kill()
        live.wait()
        for name in (stale, kept):
            if os.path.exists(f"/run/netns/{name}"):
                netns.remove(name)
