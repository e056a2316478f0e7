"""CPU lists ("0-3,8", "all", "16-N", "0-N:2/4") and CPU masks ("ff,00000001") parsed in
linear time into bounded sets.

A hostile or corrupt text must not cost more than its length: `0-100000000` was expanded into
a list of 10^8 ints, and a 200k-digit rps_cpus mask was scanned bit by bit with big-int shifts
(quadratic). No Linux host has more than MAX_CPUS CPUs, so a CPU number at or above it is
refused rather than represented.
"""

from __future__ import annotations

import re

# CONFIG_NR_CPUS tops out at 8192 (arch/x86/Kconfig NR_CPUS_RANGE_END with MAXSMP; arm64
# and powerpc allow at most 4096 and 8192): no CPU id reaches this.
MAX_CPUS = 8192
_HEX = frozenset("0123456789abcdefABCDEF")
_U32 = 1 << 32  # the kernel reads each number into an unsigned int (bitmap_getnum)

# One region of a cpulist as bitmap_parse_region() reads it (lib/bitmap.c; lib/bitmap-str.c
# in newer kernels): "all" in any case or a range A-B, either optionally followed by
# ":USED/GROUP", or a single CPU A. Any number may be "N" (upper case only), the last CPU.
_NUM = r"N|[0-9]+"
_REGION = re.compile(
    rf"(?:(?P<all>(?i:all))|(?P<lo>{_NUM})-(?P<hi>{_NUM}))(?::(?P<used>{_NUM})/(?P<group>{_NUM}))?"
    rf"|(?P<one>{_NUM})"
)
# The kernel ends a region at a comma or isspace() and skips any run of them (empty items,
# leading and trailing commas and spaces are no error: lib/test_bitmap.c "0, 1, all,  ").
# It also ends the whole list at a newline after a plain region; here a newline separates
# like any space, so "0\n5" is 0 and 5 and no CPU given is silently left out.
_SEPARATORS = re.compile(r"[,\t\n\v\f\r ]+")


def uint(text: str, limit: int | None = None) -> int | None:
    """A decimal of ASCII digits only, or None. int() alone accepts '١٢', '1_0' and ' 7',
    and raises on more than 4,300 digits; a counter has at most 20 (u64)."""
    if not text or len(text) > 20 or not text.isascii() or not text.isdigit():
        return None
    v = int(text)
    return v if limit is None or v < limit else None


def all_uint(fields: list[str]) -> bool:
    """Whether uint() (no limit) takes every field: checked a line at a time, not a field
    at a time (a 128-CPU host's /proc/interrupts is ~10,000 counts; uint() on each was a
    third of an exporter scrape, bench/record_exporter.py)."""
    if "" in fields:  # uint("") is None; split() never gives one
        return False
    joined = "".join(fields)
    if joined and not (joined.isascii() and joined.isdigit()):
        return False
    return max(map(len, fields), default=0) <= 20


def uints(fields: list[str]) -> list[int] | None:
    """Every field as uint() reads it, or None where one is not a uint."""
    return list(map(int, fields)) if all_uint(fields) else None


def parse_cpu_list(text: str, last: int | None = None) -> list[int]:
    """The kernel's cpulist, as bitmap_parselist() reads it (lib/bitmap.c;
    Documentation/admin-guide/kernel-parameters.rst "cpu lists"), sorted and distinct:
    "0-3,8,10-11" -> [0, 1, 2, 3, 8, 10, 11] (the form of cpu/online, smp_affinity_list and
    taskset); "0-7:2/4" takes the first 2 CPUs of each group of 4 -> [0, 1, 4, 5]. `last` is
    the CPU "N" names and "all" ends at (the kernel's nr_cpu_ids - 1); without it N and all
    are refused: a file under /sys never holds them. ValueError for what the kernel refuses
    (a descending range, a group of 0 or one smaller than its used count) and for a CPU at
    or above MAX_CPUS; unlike the kernel, a CPU above `last` is the caller's to judge."""
    bits = 0
    for region in _SEPARATORS.split(text):
        if region:
            bits |= _region_bits(*_region(region, last))
    return [i for i, c in enumerate(reversed(bin(bits)[2:])) if c == "1"]


def _region(region: str, last: int | None) -> tuple[int, int, int, int]:
    """One region as (first CPU, last CPU, used, group); a region with no pattern is one
    group of its whole span, as bitmap_parse_region() makes it."""
    shown = repr(region[:24])
    m = _REGION.fullmatch(region)
    if m is None:
        raise ValueError(f"{shown} is not a CPU or range of CPUs below {MAX_CPUS}")
    if m["all"]:
        lo, hi = 0, _cpu("N", last, shown)
    else:
        lo, hi = _cpu(m["lo"] or m["one"], last, shown), _cpu(m["hi"] or m["one"], last, shown)
    if hi < lo:
        n = f" (N is {last})" if "N" in region else ""
        raise ValueError(f"{shown} is a descending range{n}")
    if m["group"] is None:
        return lo, hi, hi - lo + 1, hi - lo + 1
    used, group = _size(m["used"], last, shown), _size(m["group"], last, shown)
    # bitmap_check_region(): a group of 0, or more used than a group holds, is EINVAL; a used
    # count of 0 is not (lib/test_bitmap.c: "0-0:0/1" parses to no CPU).
    if group == 0:
        raise ValueError(f"{shown}: a group of 0 CPUs")
    if used > group:
        raise ValueError(f"{shown}: {used} CPUs used of each group of {group}")
    return lo, hi, used, group


def _cpu(text: str, last: int | None, shown: str) -> int:
    cpu = _number(text, last, MAX_CPUS, shown)
    if cpu is None:
        raise ValueError(f"{shown} is not a CPU or range of CPUs below {MAX_CPUS}")
    return cpu


def _size(text: str, last: int | None, shown: str) -> int:
    size = _number(text, last, _U32, shown)
    if size is None:  # bitmap_getnum(): EOVERFLOW
        raise ValueError(f"{shown}: a used or group size beyond 32 bits")
    return size


def _number(text: str, last: int | None, limit: int, shown: str) -> int | None:
    """A number of a region below `limit`, or None; N is `last`."""
    if text != "N":
        return uint(text, limit)
    if last is None:
        raise ValueError(f"{shown}: N and all stand for the last CPU, unknown here")
    return last


def _region_bits(lo: int, hi: int, used: int, group: int) -> int:
    """The CPUs lo-hi:used/group as the bits of an int: the first `used` CPUs of each group
    of `group` from lo, cut at hi (bitmap_set_region). Built by doubling one group's pattern
    (log2(span / group) big-int steps), never CPU by CPU or group by group, so a hostile
    stride costs no more than a plain range."""
    span = hi - lo + 1
    group = min(group, span)
    pattern, width = (1 << min(used, group)) - 1, group
    while width < span:
        pattern |= pattern << width
        width *= 2
    return (pattern & ((1 << span) - 1)) << lo


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
