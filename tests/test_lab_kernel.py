"""The lab on the real kernel (root): verdicts and counters of the issue's mixed capture,
checked against the namespace's counters read independently (`ip netns exec ... cat`);
nothing left behind after SIGINT/SIGTERM/SIGHUP; stale namespaces of dead owners removed."""

from __future__ import annotations

import gzip
import os
import signal
import struct
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
from netsleuth.sources.tracefs import find_tracefs
from tests.tracefsutil import instance_of

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
    # Every frame settled inside its own send(): no "had not finished" note, no lost event.
    assert [x.notes for x in report.results] == [[]] * 6
    assert report.lost_events == 0
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


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "terminated"),
        (signal.SIGHUP, 129, "hung up"),
    ],
)
def test_signal_leaves_nothing_behind(
    tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    _require()
    cap = tmp_path / "many.pcap"
    # ARP who-has for an address nobody owns: the kernel consumes it quietly, so this flood
    # moves no drop counter that a concurrent `drops` test on the host could be counting
    # (RFC 826 packet: Ethernet, IPv4, request).
    arp = b"".join(
        (
            struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1),
            bytes.fromhex("020000000001"),
            bytes([192, 0, 2, 1]),
            bytes(6),
            bytes([198, 51, 100, 77]),
        )
    )
    frame = pad(ether(arp, 0x0806, dst="ff:ff:ff:ff:ff:ff"))
    with cap.open("wb") as fh:
        write_pcap(fh, [(i, frame) for i in range(50_000)])
    proc = subprocess.Popen(
        [sys.executable, "-m", "netsleuth", "lab", "replay", str(cap), "--limit", "50000"],
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
        # Into the replay: the tracefs instance is made after the sandbox and sockets.
        inst = None
        while time.monotonic() < deadline and proc.poll() is None:
            inst = instance_of(proc.pid)
            if inst is not None and inst.exists():
                break
            time.sleep(0.02)
        assert inst is not None and inst.exists(), "the lab never created its instance"
        time.sleep(0.3)
        assert proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert err == f"netsleuth: {said}\n"
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


def test_incident_ulb4_zero_length_fragment() -> None:
    _require()
    from netsleuth.lab.incidents import run_incident

    rep = run_incident("ulb4")
    r = rep.lab.results
    assert r[0].verdict == "reassembly" and r[0].counters["ReasmReqds"] == 1
    assert (r[1].verdict, r[1].location, r[1].freed_earlier) == ("dropped", "ip_defrag", [1])
    assert r[1].counters["ReasmFails"] == 1
    if _kernel_has("CONFIG_VLAN_8021Q") is False:  # the tagged copies are for another host
        assert [(x.verdict, x.reason) for x in r[2:]] == [("dropped", "OTHERHOST")] * 2
    doc = rep.to_json()
    assert doc["incident"] == "ulb4" and "7f0983ee331c" in doc["production"]
    assert doc["frames"][1]["what"] == "zero-length last fragment, padded"


def test_incident_rx_dropped_8023_cli_json() -> None:
    _require()
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "netsleuth",
            "lab",
            "incident",
            "rx-dropped-8023",
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
    assert [(f["verdict"], f["protocol"]) for f in doc["frames"]] == [("dropped", 4)] * 2
    assert doc["findings"][0]["refs"] == ["linux-nohandler-rx-dropped"]


def test_incident_stgw_rps_spread_and_collapse() -> None:
    _require()
    from netsleuth.lab.rps import FLOWS, run_rps

    rep = run_rps()
    by = {p.name: p for p in rep.phases}
    for p in rep.phases:
        assert sum(p.measured.values()) == FLOWS, p.name
    assert by["GRE v0"].predicted_keys == FLOWS
    assert by["PPTP (GRE v1)"].predicted_keys == FLOWS  # the model's kernel is >= 4.10
    assert by["GRE, routing bit"].predicted_keys == 1
    if len(rep.cpus) >= 2:
        # the dissector stops at the routing bit: every flow on one CPU, as steer says
        assert sorted(by["GRE, routing bit"].measured.values())[-1] == FLOWS
        assert min(by["GRE v0"].measured.values()) > 0
        assert min(by["PPTP (GRE v1)"].measured.values()) > 0


def claimed() -> list[bytes]:
    """One packet (or fragment train) for each finding id that makes a claim about Linux."""
    from netsleuth.craft import ipv6, ipv6_frag
    from netsleuth.craft.l3 import MF

    a6, b6 = "2001:db8::1", "2001:db8::80"

    def e(p: bytes) -> bytes:
        return ether(p, 0x0800)

    def v6(payload: bytes, offset: int, more: bool) -> bytes:
        return ether(
            ipv6(a6, b6, ipv6_frag(payload, 17, offset=offset, more=more, ident=9), 44), 0x86DD
        )

    return [
        pad(ieee8023(llc(stp_bpdu(), dsap=0x42, ssap=0x42))),
        pad(ether(bytes(46), 0x88B5)),
        e(ipv4(A, B, udp(A, B, 1, 9, b"x" * 8), 17, ihl=4)),
        e(ipv4(A, B, udp(A, B, 1, 9, b"x"), 17, total_length=1000)),
        e(ipv4(A, B, udp(A, B, 1, 9, b"x"), 17, checksum=0x1234)),
        e(ipv4(A, B, udp(A, B, 1, 9, b"x" * 8, length=4), 17)),
        # overlapping fragments with equal bytes, then with different bytes
        e(ipv4(A, B, b"a" * 16, 17, ident=7, flags=MF)),
        e(ipv4(A, B, b"a" * 16, 17, ident=7, flags=MF, frag_off=8)),
        e(ipv4(A, B, b"a" * 8, 17, ident=7, frag_off=24)),
        e(ipv4(A, B, b"b" * 16, 17, ident=8, flags=MF)),
        e(ipv4(A, B, b"c" * 16, 17, ident=8, flags=MF, frag_off=8)),
        e(ipv4(A, B, b"c" * 8, 17, ident=8, frag_off=24)),
        v6(b"d" * 16, 0, True),
        v6(b"d" * 16, 8, True),
        v6(b"d" * 8, 24, False),
    ]


def test_scan_lab_bears_out_every_linux_claim(tmp_path: Path) -> None:
    _require()
    from netsleuth.lab.scanlab import CLAIMS, annotate
    from netsleuth.scan import scan

    cap = tmp_path / "claims.pcap"
    with cap.open("wb") as fh:
        write_pcap(fh, [(i * 1000, f) for i, f in enumerate(claimed())])
    result = scan([str(cap)])
    annotate(result)
    labs = {f.id: f.evidence["lab"] for f in result.findings}
    assert set(CLAIMS) <= set(labs), sorted(set(CLAIMS) - set(labs))
    for fid in CLAIMS:
        assert labs[fid]["agrees"] is True, (fid, labs[fid])
    assert labs["ipv4.bad_checksum"]["drops"] == [
        {"location": "ip_rcv_core", "reason": "IP_CSUM", "frames": 1}
    ]
    # the whole train is replayed: three fragments, the overlapping one dropped
    assert labs["ipv6.fragment.overlap"]["verdicts"] == {"reassembly": 2, "dropped": 1}


def test_scan_lab_on_the_incident_captures(tmp_path: Path) -> None:
    _require()
    from netsleuth.craft import incidents

    for name, frames in (
        ("i1", incidents.incident1_poison_fragment(4)),
        ("i2", incidents.incident2_stp_llc(4)),
    ):
        cap = tmp_path / f"{name}.pcap"
        with cap.open("wb") as fh:
            write_pcap(fh, frames)
        p = subprocess.run(
            [sys.executable, "-m", "netsleuth", "scan", str(cap), "--lab", "--format", "json"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        import json

        labs = {f["id"]: f["evidence"]["lab"] for f in json.loads(p.stdout)["findings"]}
        if name == "i2":
            assert labs["l2.ieee8023_llc"]["agrees"] is True
            assert labs["l2.ieee8023_llc"]["verdicts"] == {"dropped": 2}
        elif _kernel_has("CONFIG_NET_IPGRE") is False:
            # GRE-TEB inside VLAN 10: the inner fragments never reach this kernel's stack
            zl = labs["ipv4.fragment.zero_length"]
            assert zl["frames"] == [5, 6]
            assert zl["why"] == "the outer packet died first: this kernel never saw the inner one"


def _vxlan(dport: int, vni: int = 42) -> bytes:
    from netsleuth.craft import vxlan

    i_src, i_dst, o_src, o_dst = "10.0.0.1", "10.0.0.2", "198.51.100.1", "198.51.100.2"
    inner = ether(
        ipv4(i_src, i_dst, udp(i_src, i_dst, 5, dport, b"in"), 17),
        0x0800,
        dst="02:aa:00:00:00:01",
    )
    return ether(
        ipv4(o_src, o_dst, udp(o_src, o_dst, 999, 4789, vxlan(inner, vni=vni)), 17), 0x0800
    )


def test_vxlan_frames_reach_the_inner_stack(tracefs_root: Path) -> None:
    # tracefs_root: mounted before the run, which then adds no note of mounting it.
    _require()
    if _kernel_has("CONFIG_VXLAN") is False:
        pytest.skip("this kernel has no VXLAN (CONFIG_VXLAN)")
    records = [Record(1, 1, _vxlan(53)), Record(2, 1, _vxlan(9))]
    report = run(records, Options(listen=(("udp", 53),)))
    one, two = report.results
    # Outer and inner datagram both counted: the inner one reached the listening socket.
    assert (one.verdict, one.counters["InReceives"], one.counters["Udp.InDatagrams"]) == (
        "delivered",
        2,
        1,
    )
    assert (two.verdict, two.location, two.reason) == ("dropped", "__udp4_lib_rcv", "NO_SOCKET")
    assert two.counters["Udp.NoPorts"] == 1
    assert report.notes == []


def test_a_killed_run_is_cleaned_by_the_next(tmp_path: Path) -> None:
    _require()
    cap = tmp_path / "one.pcap"
    arp = b"".join(
        (
            struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1),
            bytes.fromhex("020000000001"),
            bytes([192, 0, 2, 1]),
            bytes(6),
            bytes([198, 51, 100, 77]),
        )
    )
    with cap.open("wb") as fh:
        write_pcap(
            fh, [(i, pad(ether(arp, 0x0806, dst="ff:ff:ff:ff:ff:ff"))) for i in range(50_000)]
        )
    mounted_before = find_tracefs()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netsleuth", "lab", "replay", str(cap), "--limit", "50000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    inst = None
    while time.monotonic() < deadline and proc.poll() is None:
        inst = instance_of(proc.pid)
        if inst is not None and inst.exists():
            break
        time.sleep(0.02)
    proc.kill()  # SIGKILL: no handler runs, everything stays behind
    proc.wait()
    if mounted_before is None and find_tracefs() == Path("/sys/kernel/tracing"):
        # The killed run mounted tracefs and could not unmount it: undo that here (a plain
        # umount, refused while anyone else has it open).
        subprocess.run(["umount", "/sys/kernel/tracing"], check=False, capture_output=True)
    names = [f"netsleuth-{proc.pid}-a", f"netsleuth-{proc.pid}-b"]
    try:
        assert all(Path("/run/netns", n).exists() for n in names)
        report = run([Record(1, 1, _vxlan(9))], Options())
        for n in names:
            assert f"removed stale namespace {n} (its process is gone)" in report.notes
            assert not Path("/run/netns", n).exists()
        assert f"netsleuth-{proc.pid}" not in _tracefs_instances()
    finally:
        from pyroute2 import netns

        for n in names:
            if Path("/run/netns", n).exists():
                netns.remove(n)


def test_an_error_while_building_removes_what_was_made() -> None:
    _require()
    sb = Sandbox(rps_cpus="not-a-mask")
    with pytest.raises(ValueError, match="not hexadecimal"), sb:
        pass
    left = [p.name for p in Path("/run/netns").iterdir() if p.name in (sb.ns_a, sb.ns_b)]
    assert left == []


def test_raw_ip_and_cooked_records_are_sent_as_ethernet() -> None:
    _require()
    ip = ipv4(A, B, udp(A, B, 1234, 9, b"raw"), 17)
    sll = b"".join((struct.pack("!HHH", 0, 1, 6), bytes(8), struct.pack("!H", 0x0800), ip))
    report = run([Record(1, 101, ip), Record(2, 113, sll)], Options())
    got = [(r.verdict, r.reason, r.counters.get("Udp.NoPorts")) for r in report.results]
    assert got == [("dropped", "NO_SOCKET", 1)] * 2
