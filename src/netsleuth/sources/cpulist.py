"""CPU lists ("0-3,8") and CPU masks ("ff,00000001") parsed in linear time into bounded sets.

A hostile or corrupt text must not cost more than its length: `0-100000000` was expanded into
a list of 10^8 ints, and a 200k-digit rps_cpus mask was scanned bit by bit with big-int shifts
(quadratic). No Linux host has more than MAX_CPUS CPUs, so a CPU number at or above it is
refused rather than represented.
"""

from __future__ import annotations

# CONFIG_NR_CPUS tops out at 8192 (arch/x86/Kconfig NR_CPUS_RANGE_END with MAXSMP; arm64
# and powerpc allow at most 4096 and 8192): no CPU id reaches this.
MAX_CPUS = 8192
_MAX_DIGITS = len(str(MAX_CPUS))
_HEX = frozenset("0123456789abcdefABCDEF")


def uint(text: str, limit: int | None = None) -> int | None:
    """A decimal of ASCII digits only, or None. int() alone accepts '١٢', '1_0' and ' 7',
    and raises on more than 4,300 digits; a counter has at most 20 (u64)."""
    if not text or len(text) > 20 or not text.isascii() or not text.isdigit():
        return None
    v = int(text)
    return v if limit is None or v < limit else None


def parse_cpu_list(text: str) -> list[int]:
    """ "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11], sorted and distinct (the format of
    cpu/online, smp_affinity_list and taskset). ValueError for anything else, including a
    descending range and a CPU >= MAX_CPUS."""
    seen = bytearray(MAX_CPUS)
    for part in text.strip().split(","):
        if not part:
            continue
        a, dash, b = part.strip().partition("-")
        lo = uint(a, MAX_CPUS) if len(a) <= _MAX_DIGITS else None
        hi = lo if not dash else (uint(b, MAX_CPUS) if len(b) <= _MAX_DIGITS else None)
        if lo is None or hi is None:
            raise ValueError(f"{part[:24]!r} is not a CPU or range of CPUs below {MAX_CPUS}")
        if hi < lo:
            raise ValueError(f"{part!r} is a descending range")
        seen[lo : hi + 1] = b"\x01" * (hi - lo + 1)
    return [i for i, v in enumerate(seen) if v]


def format_cpu_list(cpus: list[int] | tuple[int, ...]) -> str:
    """[0, 1, 2, 3, 8, 10, 11] -> "0-3,8,10-11", as cpu/online writes it (the inverse of
    parse_cpu_list): one short line for a message, whatever the host's CPU count."""
    runs: list[list[int]] = []  # [first, last] of each run of consecutive CPUs
    for cpu in sorted(set(cpus)):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def parse_cpu_mask(text: str) -> list[int]:
    """rps_cpus, smp_affinity: hex in 32-bit groups separated by commas, most significant
    first (lib/bitmap.c bitmap_print_to_pagebuf). ValueError beyond MAX_CPUS bits."""
    digits = text.strip().replace(",", "").lstrip("0")
    if len(digits) > MAX_CPUS // 4:
        raise ValueError(f"a CPU mask of {len(digits)} hex digits is beyond {MAX_CPUS} CPUs")
    if not digits:
        return []
    if not set(digits) <= _HEX:
        raise ValueError("not a hex mask")
    bits = bin(int(digits, 16))[2:]
    return [i for i, c in enumerate(reversed(bits)) if c == "1"]
