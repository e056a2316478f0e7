"""Where the time of the live path goes: the benchmark's veth pair, the transmit-ring sender
at full speed, and per configuration the frames sent per second and the CPU each part
spent per frame, from /proc/stat (per CPU: user, system, softirq) and the processes' own
times (the sender's system time holds the veth transmit and, run inline at
local_bh_enable, the receive softirq; netsleuth reports its workers' CPU).

Configurations: nobody listening (the kernel's transmit and receive path alone), one
worker, two workers; optionally pinned (the sender on CPU 0, netsleuth on CPU 1) and with
RPS on the receiving veth (the receive softirq moved to CPU 1).
Usage: bench/live_profile.py [--seconds 5] [--chunk 512] [--perf]. Needs root."""

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

from live_bench import A_IF, B_IF, NETSLEUTH, A, B, cpu_times, setup, teardown
from netsleuth.craft.mix import mixed_capture

HZ = os.sysconf("SC_CLK_TCK")


def _send(
    frames: list[bytes], seconds: float, chunk: int, cpu: int | None, out: Connection
) -> None:
    from pyroute2 import netns

    from txring import replay

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    netns.pushns(A)
    linear = os.environ.get("LINEAR", "1") == "1"
    sent, elapsed = replay(A_IF, frames, 1e9, seconds, chunk=chunk, linear=linear)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out.send((sent, elapsed, ru.ru_utime, ru.ru_stime))


def trial(
    frames: list[bytes],
    workers: int,
    seconds: float,
    chunk: int,
    *,
    pin: bool,
    perf: str | None,
) -> dict[str, float]:
    live = None
    if workers:
        cmd = ["ip", "netns", "exec", B, NETSLEUTH, "scan", "--live", B_IF, "--format",
               "json", "--workers", str(workers), "--duration", str(seconds + 3),
               "--interval", "60"]  # fmt: skip
        if pin:
            cmd = ["taskset", "-c", "1", *cmd]
        live = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert live.stderr is not None
        ready = live.stderr.readline()
        if "reading" not in ready:
            raise SystemExit(f"netsleuth did not start: {ready}{live.stderr.read()}")
    here, there = mp.Pipe()
    before = cpu_times()
    sender = mp.get_context("fork").Process(
        target=_send, args=(frames, seconds, chunk, 0 if pin else None, there)
    )
    sender.start()
    rec = None
    if perf:
        time.sleep(0.5)
        rec = subprocess.Popen(
            # The sender's process only: its system time is the kernel path (the machine
            # is shared; -a would mix in everybody's work).
            [
                "perf",
                "record",
                "-g",
                "-p",
                str(sender.pid),
                "-o",
                perf,
                "--",
                "sleep",
                str(seconds - 1),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    worker_perf = None
    if perf and live is not None and workers == 1:  # the worker is netsleuth's own process
        worker_perf = subprocess.Popen(
            ["perf", "record", "-g", "-p", str(live.pid), "-o", perf + ".worker", "--",
             "sleep", str(seconds - 1)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    sent, elapsed, utime, stime = here.recv()
    after = cpu_times()
    sender.join()
    for p in (rec, worker_perf):
        if p is not None:
            p.wait()
    cpu_s = scanned = drops = 0.0
    if live is not None:
        out, _ = live.communicate(timeout=seconds + 60)
        report = json.loads(out.splitlines()[-1])
        cpu_s, scanned = report["live"]["cpu_s"], report["packets"]
        drops = report["live"]["kernel"]["drops"]
    ns = 1e9 / sent
    delta = [[a - b for a, b in zip(x, y, strict=True)] for x, y in zip(after, before, strict=True)]
    per_cpu = [
        {
            "user": d[0] + d[1],
            "system": d[2],
            "softirq": d[6],
            "busy": sum(d) - d[3] - d[4],
            "all": sum(d),
        }
        for d in delta
    ]
    return {
        "rate": sent / elapsed,
        "sender_user_ns": utime * ns,
        "sender_sys_ns": stime * ns,
        "workers_ns": cpu_s * 1e9 / max(scanned, 1),
        "scanned": scanned,
        "drops": drops,
        "softirq_ns": sum(c["softirq"] for c in per_cpu) / HZ * ns,
        "busy_ns": sum(c["busy"] for c in per_cpu) / HZ * ns,
        "per_cpu_busy": [round(100 * c["busy"] / max(c["all"], 1)) for c in per_cpu],
        "per_cpu_softirq": [round(100 * c["softirq"] / max(c["all"], 1)) for c in per_cpu],
    }


def set_rps(mask: str) -> None:
    path = f"/sys/class/net/{B_IF}/queues/rx-0/rps_cpus"
    subprocess.run(["ip", "netns", "exec", B, "sh", "-c", f"echo {mask} > {path}"], check=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--chunk", type=int, default=512)
    ap.add_argument("--configs", default="0,1,2,1p,2p,1r,2r")
    ap.add_argument("--perf", action="store_true", help="perf record -g the sender")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("live profile: skipped (needs root)")
        return 0
    frames = [f for _, f in mixed_capture(1 << 16, poison=False)]
    print(f"live profile: chunk {args.chunk}, {args.seconds:g} s each, load {os.getloadavg()}")
    setup()
    try:
        for cfg in args.configs.split(","):
            workers, pin, rps = int(cfg[0]), "p" in cfg, "r" in cfg
            set_rps("2" if rps else "0")
            perf = f"/tmp/live-perf-{os.getpid()}-{cfg}.data" if args.perf else None
            r = trial(frames, workers, args.seconds, args.chunk, pin=pin or rps, perf=perf)
            print(
                f"  {cfg:>3}: {r['rate']:>10,.0f}/s  sender user {r['sender_user_ns']:5.0f} "
                f"sys {r['sender_sys_ns']:5.0f}  softirq {r['softirq_ns']:5.0f}  "
                f"workers {r['workers_ns']:5.0f}  all CPUs busy {r['busy_ns']:5.0f} ns/frame  "
                f"busy% {r['per_cpu_busy']} softirq% {r['per_cpu_softirq']}  "
                f"drops {r['drops']:,.0f}  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            if perf:
                print(f"       perf data: {perf}")
            time.sleep(0.5)
    finally:
        teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
