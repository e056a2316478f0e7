"""`make fuzz`: the fuzz properties of tests/test_fuzz*.py, in rounds with fresh random seeds
and a large budget each, until FUZZ_MINUTES have passed; prints the inputs tried per round
(hypothesis's own "passing examples" counts) and the total. Stops at the first failure, with
hypothesis's falsifying example on screen. Run in .fuzz-venv (the C extensions built with
AddressSanitizer, libasan preloaded: a C memory error aborts the run) when make sets it up.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time

MINUTES = float(os.environ.get("FUZZ_MINUTES", "30"))
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "3000")
TESTS = ["tests/test_fuzz.py", "tests/test_fuzz_hostile.py"]


def main() -> int:
    t0 = time.monotonic()
    total = rounds = 0
    env = {**os.environ, "NETSLEUTH_FUZZ_EXAMPLES": EXAMPLES, "NETSLEUTH_FUZZ_RANDOM": "1"}
    while time.monotonic() - t0 < MINUTES * 60:
        seed = random.SystemRandom().randrange(1 << 32)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                *TESTS,
                f"--hypothesis-seed={seed}",
                "--hypothesis-show-statistics",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        n = sum(int(m) for m in re.findall(r"(\d+) passing", proc.stdout))
        rounds += 1
        total += n
        minutes = (time.monotonic() - t0) / 60
        print(f"round {rounds} seed {seed}: {n} inputs, {total} in {minutes:.1f} min", flush=True)
        if proc.returncode != 0:
            print(proc.stdout[-20000:], proc.stderr[-5000:], sep="\n")
            print(f"FAILED after {total} inputs, {minutes:.1f} min (seed {seed})")
            return 1
    minutes = (time.monotonic() - t0) / 60
    print(f"fuzz: {total} inputs in {rounds} rounds, {minutes:.1f} min, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
