"""CPU cost of the `profile` reader at 99 Hz on every online CPU (design bar: <= 1% of one
CPU): the reader's own user+system time (getrusage, RUSAGE_SELF) across the sampling loop
of N seconds, so start-up, kallsyms and the report are left out, and then the whole command
end to end as a child process for comparison. The kernel's side (the timer interrupt and
the stack walk on each sampled CPU) is charged to whatever task each sample interrupts, not
to the reader, and is not in these figures."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from netsleuth.profile.run import online_cpus, sample

NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
SECONDS = 10.0
HZ = 99


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main() -> int:
    if os.geteuid() != 0:
        print("profile overhead: skipped (needs root for perf_event_open on every CPU)")
        return 0
    cpus = online_cpus()
    marks: list[float] = []
    counts, stats, seconds, _ = sample(
        cpus, SECONDS, HZ, on_start=lambda: marks.append(cpu_seconds())
    )
    used = cpu_seconds() - marks[0]
    n = sum(counts.values())
    share = used / seconds
    verdict = "met" if share <= 0.01 else "NOT met"
    print(
        f"profile reader at {HZ} Hz on {len(cpus)} CPUs: {used * 1000:.1f} ms of CPU over "
        f"{seconds:.1f} s = {100 * share:.2f}% of one CPU (<= 1%: {verdict}); {n:,} samples, "
        f"{len(counts):,} distinct stacks, {stats.lost} lost, {stats.malformed} malformed"
    )
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [NETSLEUTH, "profile", "--cpus", ",".join(map(str, cpus)), "--duration", str(SECONDS)],
        stdout=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    wall = time.monotonic() - t0
    whole = usage.ru_utime + usage.ru_stime
    print(
        f"netsleuth profile --duration {SECONDS:g} end to end: {whole:.2f} s of CPU in "
        f"{wall:.1f} s (start-up, kallsyms and the report included)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
