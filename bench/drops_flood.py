"""Drop-tracing benchmark: a bounded flood of UDP to a closed port across a veth pair
between two network namespaces, measured without and with `netsleuth drops` running.

Prints packets sent, drops seen, events reported lost (seen + lost must equal sent), the
sender's rate both ways (the tracing cost on the dropping CPU) and the CPU time `drops`
used. Needs root. Usage: bench/drops_flood.py [--seconds 3]"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

A, B = f"nsl-flood-a-{os.getpid()}", f"nsl-flood-b-{os.getpid()}"
A_IP, B_IP = "10.197.0.1", "10.197.0.2"
SENDER_CPU, DROPS_CPU = 0, 1


def setup() -> None:
    from pyroute2 import NetNS, netns

    netns.create(A)
    netns.create(B)
    with NetNS(A) as nsa:
        nsa.link("add", ifname="fla", kind="veth", peer={"ifname": "flb", "net_ns_fd": B})
        i = nsa.link_lookup(ifname="fla")[0]
        nsa.addr("add", index=i, address=A_IP, prefixlen=24)
        nsa.link("set", index=i, state="up")
    with NetNS(B) as nsb:
        i = nsb.link_lookup(ifname="flb")[0]
        nsb.addr("add", index=i, address=B_IP, prefixlen=24)
        nsb.link("set", index=i, state="up")


def teardown() -> None:
    from pyroute2 import netns

    for name in (A, B):
        if name in netns.listnetns():
            netns.remove(name)


def _flood(seconds: float, out: mp.connection.Connection) -> None:
    from pyroute2 import netns

    os.sched_setaffinity(0, {SENDER_CPU})
    netns.pushns(A)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    netns.popns()
    dst = (B_IP, 9)
    s.sendto(b"warm-up", dst)  # resolves ARP; a drop like the others, so it counts
    time.sleep(0.3)
    payload = b"x" * 18
    sent = 1
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for _ in range(1000):
            s.sendto(payload, dst)
        sent += 1000
    out.send((sent, time.monotonic() - t0))


def flood(seconds: float) -> tuple[int, float]:
    ctx = mp.get_context("fork")
    rx, tx = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_flood, args=(seconds, tx))
    p.start()
    sent, took = rx.recv()
    p.join()
    return sent, took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("drops flood: needs root (network namespaces, tracefs); skipped")
        return 0
    setup()
    try:
        base_sent, base_t = flood(args.seconds)
        cmd = [str(Path(sys.executable).with_name("netsleuth")), "drops", "--duration", "0"]
        cmd += ["--format", "json", "--filter", "reason=NO_SOCKET", "--filter", "protocol=ipv4"]
        drops = subprocess.Popen(
            ["taskset", "-c", str(DROPS_CPU), *cmd], stdout=subprocess.PIPE, text=True
        )
        time.sleep(1.5)  # start-up, instance, kallsyms
        t0 = time.monotonic()
        sent, took = flood(args.seconds)
        time.sleep(0.5)
        drops.send_signal(signal.SIGINT)
        assert drops.stdout is not None
        out = drops.stdout.read()
        # wait4: this process's own rusage (RUSAGE_CHILDREN would add the flood senders).
        _, _, usage = os.wait4(drops.pid, 0)
        drops.returncode = 0
        wall = time.monotonic() - t0
    finally:
        teardown()
    doc = json.loads(out)
    seen = sum(d["count"] for d in doc["drops"])
    lost = doc["lost_events"]
    cpu = usage.ru_utime + usage.ru_stime
    print(f"drops flood ({args.seconds:.0f} s of UDP to a closed port across a veth pair):")
    print(f"  without drops: {base_sent:,} sent, {base_sent / base_t:,.0f}/s")
    print(f"  with drops:    {sent:,} sent, {sent / took:,.0f}/s")
    verdict = "every packet accounted for" if seen + lost == sent else "MISMATCH"
    print(
        f"  drops saw {seen:,}, reported {lost:,} lost: seen + lost = {seen + lost:,} ({verdict})"
    )
    print(
        f"  drops process CPU (start-up included): {cpu:.2f} s over {wall:.1f} s "
        f"= {100 * cpu / wall:.0f}% of one CPU"
    )
    return 0 if seen + lost == sent else 1


if __name__ == "__main__":
    raise SystemExit(main())
