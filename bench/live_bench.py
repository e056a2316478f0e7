"""Live-capture benchmark: 65,536 frames of the benchmark's mixed traffic sent in a loop
across a veth pair between two network namespaces into `netsleuth scan --live`, at rising
rates, with one worker and with two (PACKET_FANOUT_HASH).

The sender is bench/txring.py (an AF_PACKET transmit ring: one system call per 4096
frames, each copied into a linear skb); tcpreplay, one call per frame, tops out near 300k
frames/s here. Per rate it also prints the CPU each part spent per frame: netsleuth (its
workers), the kernel path (the sender's system time: transmit, veth, and the receive
softirq, which runs inline in the sender's system call, the copy into the ring included),
the sender's own user time; `--senders 2` runs one sender per CPU. bench/live_profile.py
breaks the kernel path down further (perf). For each worker
count it prints, per rate, what the sender achieved, what reached the socket, the kernel
drops (PACKET_STATISTICS) and netsleuth's CPU per packet, then the highest rate with zero
kernel drops over the whole run. It stops raising the rate at the first drop or when the
sender cannot reach the rate asked (the sender's limit, not ours). The veth's receive work
runs on the sending CPU (veth_xmit -> netif_rx), so sender, softirq and workers share the
machine's CPUs. Needs root.
Usage: bench/live_bench.py [--seconds 10] [--rates 100000,...] [--workers 1,2] [--senders 1]"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

from netsleuth.craft.mix import mixed_capture

ROOT = Path(__file__).resolve().parents[1]
NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
PID = os.getpid()
A, B = f"nsl-lb-a-{PID}", f"nsl-lb-b-{PID}"
A_IF, B_IF = f"lb{PID}a", f"lb{PID}b"
RATES = [100_000, 200_000, 300_000, 400_000, 600_000, 800_000, 1_000_000, 1_200_000]
CHUNK = 4096  # frames a send() on the transmit ring


def setup() -> None:
    from pyroute2 import NetNS, netns

    for ns in (A, B):
        netns.create(ns)
        netns.pushns(ns)
        try:
            for conf in ("all", "default"):  # quiet: no IPv6 neighbour/router traffic
                Path(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6").write_text("1")
        finally:
            netns.popns()
    with NetNS(A) as nsa:
        nsa.link("add", ifname=A_IF, kind="veth", peer={"ifname": B_IF, "net_ns_fd": B})
        nsa.link("set", index=nsa.link_lookup(ifname=A_IF)[0], state="up", mtu=9000)
    with NetNS(B) as nsb:
        nsb.link("set", index=nsb.link_lookup(ifname=B_IF)[0], state="up", mtu=9000)


def teardown() -> None:
    from pyroute2 import netns

    for ns in (A, B):
        if ns in netns.listnetns():
            netns.remove(ns)


def cpu_times() -> list[list[int]]:
    """Per CPU, from /proc/stat: user, nice, system, idle, iowait, irq, softirq (ticks)."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            out.append([int(x) for x in line.split()[1:8]])
    return out


def softirq_s(before: list[list[int]], after: list[list[int]]) -> float:
    """Seconds spent in softirq on all CPUs between two cpu_times()."""
    ticks = sum(a[6] - b[6] for a, b in zip(after, before, strict=True))
    return ticks / os.sysconf("SC_CLK_TCK")


def _send(
    frames: list[bytes], rate: float, seconds: float, cpu: int | None, out: Connection
) -> None:
    from pyroute2 import netns

    from txring import replay

    if cpu is not None:  # several senders: one a CPU, so their kernel paths run side by side
        os.sched_setaffinity(0, {cpu})
    netns.pushns(A)
    sent, elapsed = replay(A_IF, frames, rate, seconds, chunk=CHUNK)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.send((sent, elapsed, ru.ru_utime, ru.ru_stime))


def trial(
    frames: list[bytes], rate: int, workers: int, seconds: float, senders: int = 1
) -> dict[str, float]:
    live = subprocess.Popen(
        ["ip", "netns", "exec", B, NETSLEUTH, "scan", "--live", B_IF, "--format", "json",
         "--workers", str(workers), "--duration", str(seconds + 4), "--interval", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert live.stderr is not None
    ready = live.stderr.readline()
    if "reading" not in ready:
        raise SystemExit(f"netsleuth did not start: {ready}{live.stderr.read()}")
    pipes = [mp.Pipe() for _ in range(senders)]
    before = cpu_times()
    procs = [
        mp.get_context("fork").Process(
            target=_send,
            args=(frames, rate / senders, seconds, k if senders > 1 else None, there),
        )
        for k, (_here, there) in enumerate(pipes)
    ]
    for p in procs:
        p.start()
    got = [here.recv() for here, _there in pipes]
    soft = softirq_s(before, cpu_times())
    for p in procs:
        p.join()
    sent = sum(g[0] for g in got)
    elapsed = max(g[1] for g in got)
    utime, stime = sum(g[2] for g in got), sum(g[3] for g in got)
    out, _err = live.communicate(timeout=seconds + 60)
    report = json.loads(out.splitlines()[-1])
    k = report["live"]["kernel"]
    return {
        "asked": rate,
        "sent": sent,
        "achieved": sent / elapsed,
        "socket": k["packets"],
        "scanned": report["packets"],
        "drops": k["drops"],
        "cpu_ns_per_packet": 1e9 * report["live"]["cpu_s"] / max(report["packets"], 1),
        # The sender's system time holds the kernel's whole path: the transmit, the veth,
        # and the receive softirq run inline at local_bh_enable (perf: do_softirq under
        # packet_sendmsg), the copy into the ring (tpacket_rcv) included.
        "sender_user_ns": 1e9 * utime / max(sent, 1),
        "kernel_ns": 1e9 * stime / max(sent, 1),
        "softirq_ns": 1e9 * soft / max(sent, 1),
        "load": os.getloadavg()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", default=",".join(map(str, RATES)))
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--senders", type=int, default=1, help="sender processes, one a CPU")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("live bench: skipped (needs root)")
        return 0
    frames = [f for _, f in mixed_capture(1 << 16, poison=False)]
    rates = [int(r) for r in args.rates.split(",")]
    load = os.getloadavg()[0]
    print(
        f"live bench: {args.seconds:g} s per rate, {args.senders} sender(s), "
        f"load average {load:.2f} at start"
    )
    setup()
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            best = 0.0
            for rate in rates:
                r = trial(frames, rate, workers, args.seconds, args.senders)
                print(
                    f"  workers {workers}  asked {rate:>9,}/s  sent {r['achieved']:>11,.0f}/s"
                    f"  socket {r['socket']:>10,}  drops {r['drops']:>8,}"
                    f"  cpu/packet: netsleuth {r['cpu_ns_per_packet']:5.0f} ns, kernel path"
                    f" {r['kernel_ns']:5.0f} ns (softirq {r['softirq_ns']:4.0f}), sender"
                    f" {r['sender_user_ns']:4.0f} ns  load {r['load']:.2f}",
                    flush=True,
                )
                if r["drops"]:
                    break
                best = max(best, r["achieved"])
                if r["achieved"] < 0.9 * rate:
                    print(
                        f"  (the sender reached {r['achieved']:,.0f}/s of {rate:,}: sender-bound)"
                    )
                    break
                time.sleep(0.5)
            print(f"live, {workers} worker(s): {best:,.0f} packets/s with zero kernel drops")
    finally:
        teardown()
    print(f"load average {os.getloadavg()[0]:.2f} at the end (other work on this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
