"""`scan --live` on the real kernel: incident 1's capture sent across a quiet veth pair into
the CLI gives the findings `scan` gives on the file, the evidence pcapng holds the fragment
pair and the packets around it (read back by tshark), two fanout workers agree, ring
overflow becomes capture.kernel_drops, the inner-field filter runs in the kernel, and the
errors are one line with their exit code. Needs root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netsleuth.bpf import compile_filter
from netsleuth.capture.ring import RingConfig, RingReader
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import ether, incidents
from tests.bpfutil import frame, inner_ip, inner_ip6
from tests.livenet import NETSLEUTH, Lines, Quiet, quiet_pair, start_live

pytestmark = pytest.mark.privileged


@pytest.fixture
def pair() -> Iterator[Quiet]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces and AF_PACKET")
    with quiet_pair("lv") as q:
        yield q


def start(q: Quiet, *args: str) -> subprocess.Popen[str]:
    """netsleuth scan --live in the receiving namespace, once its socket is ready."""
    return start_live(q.b_if, *args, prefix=["ip", "netns", "exec", q.b])


def finish(p: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]], str]:
    out, err = p.communicate(timeout=60)
    return p.returncode, [json.loads(x) for x in out.splitlines()], err


def key(f: dict[str, Any]) -> tuple[Any, ...]:
    return (f["id"], f["severity"], f["count"], f["layer"], tuple(f["packets"]))


def file_scan(path: Path) -> list[tuple[Any, ...]]:
    r = subprocess.run(
        [NETSLEUTH, "scan", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(key(f) for f in json.loads(r.stdout)["findings"])


def test_incident1_live_equals_file_and_evidence_holds_the_pair(
    pair: Quiet, tmp_path: Path, tshark: str
) -> None:
    cap = incidents.incident1_poison_fragment()
    with open(tmp_path / "i1.pcap", "wb") as fh:
        write_pcap(fh, cap)
    ev = tmp_path / "ev.pcapng"
    p = start(pair, "--duration", "2", "--format", "json", "--export", str(ev), "--after", "0.5")
    for _, f in cap:
        pair.raw.send(f)
    code, lines, err = finish(p)
    assert code == 0, err
    report = lines[-1]
    assert report["event"] == "report" and report["packets"] == len(cap)
    assert sorted(key(f) for f in report["findings"]) == file_scan(tmp_path / "i1.pcap")
    assert report["live"]["kernel"]["drops"] == 0
    first = [x for x in lines if x["event"] == "finding"]
    assert [x["findings"][0]["id"] for x in first] == ["ipv4.fragment.zero_length"]
    assert report["live"]["evidence"] == [
        {"path": str(ev), "packets": len(cap), "trigger": ["ipv4.fragment.zero_length"]}
    ]
    rows = subprocess.run(
        [
            tshark,
            "-r",
            str(ev),
            "-T",
            "fields",
            "-e",
            "frame.comment",
            "-e",
            "ip.flags.mf",
            "-e",
            "ip.frag_offset",
            "-e",
            "ip.len",
            "-e",
            "vlan.id",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(rows) == len(cap)  # the 20 packets around the pair, then the pair
    *_, first_frag, zero = (r.split("\t") for r in rows)
    assert "fragment of a datagram flagged ipv4.fragment.zero_length" in first_frag[0]
    assert first_frag[1:3] == ["0,1", "0,0"] and first_frag[4] == "10"  # outer DF; inner MF
    assert "ipv4.fragment.zero_length [inner]" in zero[0]
    # offset 1400 bytes (tshark counts 8-byte units), total length 20: no payload
    assert zero[2].endswith(",175") and zero[3].endswith(",20")


def test_two_fanout_workers_find_the_same(pair: Quiet, tmp_path: Path, tshark: str) -> None:
    """Also: --only keeps the runt (l2.* findings) out of the stream and the report; the
    report's frame number leads to the frame in the worker's evidence file."""
    cap = incidents.incident1_poison_fragment()
    ev = tmp_path / "ev.pcapng"
    p = start(
        pair, "--duration", "2", "--format", "json", "--workers", "2", "--only", "ipv4.*",
        "--export", str(ev), "--after", "0.2",
    )  # fmt: skip
    for _, f in cap:
        pair.raw.send(f)
    pair.raw.send(ether(b"r" * 20, 0x88B5))  # a 34-byte runt: the veth does not pad it
    code, lines, err = finish(p)
    assert code == 0, err
    report = lines[-1]
    assert report["packets"] == len(cap) + 1 and report["live"]["workers"] == 2
    seen = [x["findings"][0]["id"] for x in lines if x["event"] == "finding"]
    assert seen == ["ipv4.fragment.zero_length"]
    assert [(f["id"], f["count"]) for f in report["findings"]] == [("ipv4.fragment.zero_length", 1)]
    spans = report["live"]["frames_by_worker"]
    assert [s["worker"] for s in spans] == [0, 1] and spans[0]["first_frame"] == 1
    assert spans[1]["first_frame"] == spans[0]["frames"] + 1
    assert spans[0]["frames"] + spans[1]["frames"] == len(cap) + 1
    (frame,) = report["findings"][0]["packets"]
    k = 1 if frame >= spans[1]["first_frame"] else 0
    local = frame - spans[k]["first_frame"] + 1
    (written,) = report["live"]["evidence"]
    assert written["path"] == str(tmp_path / f"ev-w{k}.pcapng")
    comments = subprocess.run(
        [tshark, "-r", written["path"], "-T", "fields", "-e", "frame.comment"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    hit = [c for c in comments if f"{pair.b_if} worker {k} frame {local}:" in c]
    assert len(hit) == 1 and "ipv4.fragment.zero_length [inner]" in hit[0], comments


def _drained(line: str) -> bool:
    """A summary of an interval, after frames were read, in which no frame reached the
    socket and none was read: the sending is over and the ring holds nothing more."""
    e: dict[str, Any] = json.loads(line)
    return bool(
        e.get("event") == "summary"
        and e["packets"] > 0
        and e["rate_pps"] == 0
        and e["kernel"]["interval"]["packets"] == 0
    )


def test_ring_overflow_is_a_kernel_drops_finding(pair: Quiet) -> None:
    SENT = 8000
    # No --duration: the run checks it before reading, so a busy host that took longer to
    # send than the duration ended the run without reading the ring. SIGTERM ends it once
    # it has read what the ring kept.
    p = start(pair, "--format", "json", "--ring-mb", "8", "--interval", "0.2")
    assert p.stdout is not None and p.stderr is not None
    out = Lines(p.stdout)
    os.kill(p.pid, signal.SIGSTOP)  # nobody reads: 2 x 4 MiB blocks fill, the rest drops
    try:
        for _ in range(SENT):
            pair.raw.send(frame("", inner_ip()) + bytes(1400))
    finally:
        os.kill(p.pid, signal.SIGCONT)
    out.wait_for(_drained)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0, p.stderr.read()
    lines = [json.loads(x) for x in out.all()]
    p.stderr.close()
    report = lines[-1]
    assert report["event"] == "report"
    drops = [f for f in report["findings"] if f["id"] == "capture.kernel_drops"]
    k = report["live"]["kernel"]
    assert k["drops"] > 0 and drops and drops[0]["count"] == k["drops"]
    assert report["packets"] + k["drops"] == SENT == k["packets"]


def test_sigterm_ends_with_the_report_and_plain_lines_in_a_pipe(pair: Quiet) -> None:
    p = start(pair, "--interval", "0.2")
    assert p.stdout is not None and p.stderr is not None
    out = Lines(p.stdout)
    for _, f in incidents.incident1_poison_fragment():
        pair.raw.send(f)
    # A summary line that counts all 22: the signal must not come before they are read.
    out.wait_for(lambda line: " 22 packets, " in line)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0, p.stderr.read()
    text = "".join(out.all())
    p.stderr.close()
    assert "critical ipv4.fragment.zero_length [inner]: IPv4 fragment with no payload" in text
    assert "kernel: 22 frames reached the socket, 0 dropped" in text  # the final report


@pytest.mark.parametrize("how", ["down", "deleted"])
def test_interface_gone_mid_run_reports_and_exits_2(pair: Quiet, how: str) -> None:
    from pyroute2 import NetNS

    p = start(pair, "--format", "json")
    if how == "down":
        with NetNS(pair.b) as ns:
            ns.link("set", index=ns.link_lookup(ifname=pair.b_if)[0], state="down")
    else:
        with NetNS(pair.a) as ns:
            ns.link("del", index=ns.link_lookup(ifname=pair.a_if)[0])  # takes its peer too
    code, lines, err = finish(p)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"netsleuth: {pair.b_if}: the interface went")
    assert lines[-1]["event"] == "report"


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to test both")
    from netsleuth.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["scan", "--live", "nsl-absent0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err == "netsleuth: nsl-absent0: no such network interface (see `ip link`)\n"
    # Effective uid nobody in-process (a child as nobody could not reach this interpreter
    # under /root): the kernel refuses the AF_PACKET socket.
    os.setegid(65534)
    os.seteuid(65534)
    try:
        with pytest.raises(SystemExit) as stop:
            main(["scan", "--live", "lo", "--duration", "1"])
    finally:
        os.seteuid(0)
        os.setegid(0)
    assert stop.value.code == 3
    err = capsys.readouterr().err
    assert err.startswith("netsleuth: scan --live needs root") and err.count("\n") == 1


def kernel_verdicts(
    q: Quiet, prog: list[tuple[int, int, int, int]], frames: list[bytes]
) -> list[int]:
    """The numbers of the frames (sent in order, each number appended) that the program,
    attached to a ring on the receiving end, let through."""
    from pyroute2 import netns

    netns.pushns(q.b)
    try:
        reader = RingReader(q.b_if, RingConfig(block_size=1 << 16, blocks=4, retire_ms=5, bpf=prog))
    finally:
        netns.popns()
    with reader:
        for n, f in enumerate(frames):
            q.raw.send(f + b"#" + bytes([n]))
        got: list[int] = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            b = reader.read_ready()
            if b is None:
                reader.wait(20)
                continue
            got += [b.packet(i)[-1] for i in range(len(b))]
    return sorted(got)


def test_inner_filter_in_the_kernel_passes_only_the_targets(pair: Quiet) -> None:
    """Incident 1's layout: the kernel strips the 802.1Q tag before the filter runs; the
    program checks for it with the ancillary load and matches the inner fields at the
    tagless offsets. Each frame carries its number in the inner payload."""
    prog = compile_filter("inner.src 27.18.0.0/16 and inner.proto tcp", "vlan,gre-teb").program
    cases = [
        (frame("vlan,gre-teb", inner_ip("tcp"), key=True), True),
        (frame("vlan,gre-teb", inner_ip("tcp"), key=False), True),
        (frame("vlan,gre-teb", inner_ip("udp"), key=True), False),
        (frame("vlan,gre-teb", inner_ip("tcp", src="27.19.0.1"), key=True), False),
        (frame("gre-teb", inner_ip("tcp"), key=True), False),  # no tag
        (frame("vlan,gre", inner_ip("tcp"), key=True), False),  # GRE without TEB
        (frame("vlan", inner_ip("tcp")), False),  # not tunnelled
    ]
    got = kernel_verdicts(pair, prog, [f for f, _ in cases])
    assert got == [n for n, (_, want) in enumerate(cases) if want]


def test_inner_ipv6_filter_in_the_kernel_passes_only_the_targets(pair: Quiet) -> None:
    """The same with inner IPv6 behind VLAN / GRE-TEB and behind VLAN / VXLAN."""
    src = "inner.src 2001:db8:1b12::/48 and inner.proto tcp"
    cases = {
        "vlan,gre-teb": [
            (frame("vlan,gre-teb", inner_ip6("tcp"), key=True), True),
            (frame("vlan,gre-teb", inner_ip6("tcp"), key=False), True),
            (frame("vlan,gre-teb", inner_ip6("udp"), key=True), False),
            (frame("vlan,gre-teb", inner_ip6("tcp", src="2001:db8:1b13::1"), key=True), False),
            (frame("vlan,gre-teb", inner_ip6("tcp", frag=True), key=True), False),  # ext header
            (frame("vlan,gre-teb", inner_ip("tcp"), key=True), False),  # inner IPv4
            (frame("gre-teb", inner_ip6("tcp"), key=True), False),  # no tag
        ],
        "vlan,vxlan": [
            (frame("vlan,vxlan", inner_ip6("tcp")), True),
            (frame("vlan,vxlan", inner_ip6("udp")), False),
            (frame("vlan,gre-teb", inner_ip6("tcp")), False),
        ],
    }
    for encap, frames in cases.items():
        got = kernel_verdicts(pair, compile_filter(src, encap).program, [f for f, _ in frames])
        assert got == [n for n, (_, want) in enumerate(frames) if want], encap


def test_window_keeps_before_seconds_and_rotate_writes_one_file_per_trigger(
    pair: Quiet, tmp_path: Path, tshark: str
) -> None:
    cap = [f for _, f in incidents.incident1_poison_fragment()]
    ev = tmp_path / "ev.pcapng"
    paths = [str(tmp_path / "ev-1.pcapng"), str(tmp_path / "ev-2.pcapng")]
    # No --duration: SIGTERM ends it once both files are closed, however slow the host.
    p = start(
        pair, "--format", "json", "--export", str(ev), "--rotate", "1MB",
        "--before", "0.4", "--after", "0.2", "--interval", "0.1",
    )  # fmt: skip
    assert p.stdout is not None and p.stderr is not None
    out = Lines(p.stdout)

    def closed(path: str) -> Callable[[str], bool]:
        return lambda line: json.loads(line).get("event") == "evidence" and path in line

    old = frame("", inner_ip("udp"))
    for _ in range(5):
        pair.raw.send(old)  # older than --before when the trigger comes: not written
    # Packet time must pass (a sleep only ever lasts longer): 1 s is 2.5 x --before.
    time.sleep(1.0)
    for f in cap:
        pair.raw.send(f)
    sent = time.monotonic()
    # --after has passed with no frame: the first file closes on the quiet link, and says so
    # before any frame that could have closed it comes.
    out.wait_for(closed(paths[0]))
    # The first trigger's frames are then 2 x --before old, out of the second file's window.
    time.sleep(max(0.0, sent + 0.8 - time.monotonic()))
    for f in cap:
        pair.raw.send(f)  # the zero-length fragment again: a second trigger
    out.wait_for(closed(paths[1]))
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 0, p.stderr.read()
    lines = [json.loads(x) for x in out.all()]
    p.stderr.close()
    files = lines[-1]["live"]["evidence"]
    assert [(e["path"], e["packets"]) for e in files] == [(paths[0], 22), (paths[1], 22)]
    for path in paths:
        comments = subprocess.run(
            [tshark, "-r", path, "-T", "fields", "-e", "frame.comment"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
        assert len(comments) == 22
        assert "ipv4.fragment.zero_length [inner]" in comments[-1]


def test_a_terminal_gets_the_live_table(pair: Quiet) -> None:
    """Under a pseudo-terminal (script(1)) the findings are a table redrawn in place."""
    cmd = (
        f"ip netns exec {pair.b} {NETSLEUTH} scan --live {pair.b_if} --duration 1.5 --interval 0.2"
    )
    p = subprocess.Popen(
        ["script", "-qc", cmd, "/dev/null"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    while "reading" not in (line := p.stdout.readline()):  # stderr shares the terminal
        assert line, "netsleuth ended before it was ready"
    for _, f in incidents.incident1_poison_fragment():
        pair.raw.send(f)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    assert f"{pair.b_if}: 22 packets" in out and "kernel drops 0" in out
    assert "│ ipv4.fragment.zero_length [inner] │ critical │     1 │" in out


def test_only_decides_what_may_trigger_the_evidence(pair: Quiet, tmp_path: Path) -> None:
    """As in scan, --only filters what is shown and exported: a critical fragment finding
    outside --only 'l2.*' writes no evidence."""
    ev = tmp_path / "ev.pcapng"
    p = start(pair, "--duration", "1.5", "--format", "json", "--only", "l2.*",
              "--trigger", "info", "--export", str(ev))  # fmt: skip
    for _, f in incidents.incident1_poison_fragment():
        pair.raw.send(f)
    code, lines, err = finish(p)
    assert code == 0, err
    assert lines[-1]["packets"] == 22 and lines[-1]["findings"] == []
    assert lines[-1]["live"]["evidence"] == [] and not ev.exists()
