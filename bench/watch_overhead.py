"""CPU cost of `netsleuth watch` (and so of doctor's sampling) at a 1 s interval: the CPU
time of a 12-interval run minus a 2-interval run, per interval, as a share of one CPU
(design bar: <= 1%). Start-up (interpreter, imports) is excluded by the subtraction."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))


def cpu_of(count: int, interval: float) -> float:
    proc = subprocess.Popen(
        [NETSLEUTH, "watch", "--count", str(count), "--interval", str(interval)],
        stdout=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    short, long = cpu_of(2, 1.0), cpu_of(12, 1.0)
    per = (long - short) / 10
    verdict = "met" if per <= 0.01 else "NOT met"
    print(
        f"watch at 1 s: {per * 1000:.1f} ms of CPU per interval = {100 * per:.2f}% of one CPU "
        f"(<= 1%: {verdict}); start-up and first sample {short:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
