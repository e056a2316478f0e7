"""CPU lists read as the kernel reads a cpulist (bitmap_parselist, lib/bitmap.c; lib/bitmap-str.c
in newer kernels). The expected sets are the kernel's own examples: its documentation
(Documentation/admin-guide/kernel-parameters.rst "cpu lists", bitmap_parselist's comment) and
its self-test table (lib/test_bitmap.c parselist_tests, run with nbits 32: N is 31)."""

from __future__ import annotations

import pytest

from netsleuth.sources.cpulist import MAX_CPUS, parse_cpu_list, uints
from netsleuth.sources.interrupts import parse_interrupts, queue_irqs
from tests.conftest import ROOT

EVENS = list(range(0, 32, 2))


def _strided(lo: int, hi: int, used: int, group: int) -> list[int]:
    return [s + k for s in range(lo, hi + 1, group) for k in range(used) if s + k <= hi]


# kernel-parameters.rst: "isolcpus=1,2,10-20,100-2000:2/25 ... the final item represents CPUs
# 100,101,125,126,150,151,..."; "foo_cpus=16-N would be equivalent to 16-31 on a 32 core
# system"; "nohz_full=all is the equivalent of nohz_full=0-N". bitmap_parselist's comment:
# "0-1023:2/256 ==> 0,1,256,257,512,513,768,769". The brief's: 0-7:2/4 -> 0,1,4,5.
DOCUMENTED = [
    ("1,2,10-20,100-2000:2/25", [1, 2, *range(10, 21), *_strided(100, 2000, 2, 25)]),
    ("16-N", list(range(16, 32))),
    ("all", list(range(32))),
    ("0-1023:2/256", [0, 1, 256, 257, 512, 513, 768, 769]),
    ("0-7:2/4", [0, 1, 4, 5]),
]

# lib/test_bitmap.c parselist_tests that parse (nbits 32, so N is 31).
SELF_TEST = [
    ("0-31:1/2", EVENS),
    ("1-31:1/4", list(range(1, 32, 4))),
    ("0-31:4/4", list(range(32))),
    ("0-31:3/4,32-63:4/4", [c for c in range(64) if c >= 32 or c % 4 != 3]),
    ("  ,,  0-31:3/4  ,, 32-63:4/4  ,,  ", [c for c in range(64) if c >= 32 or c % 4 != 3]),
    ("", []),
    ("\n", []),
    (",,  ,,  , ,  ,", []),
    (" ,  ,,  , ,   \n", []),
    ("0-0", [0]),
    ("31-31", [31]),
    ("0-0:0/1", []),
    ("0-0:31/31", [0]),
    ("0-15:16/31", list(range(16))),
    ("15-15:1/2", [15]),
    ("15-31:1/31", [15]),
    ("16-31:16/31", list(range(16, 32))),
    ("N-N", [31]),
    ("0-0:1/N", [0]),
    ("0-15:16/N", list(range(16))),
    ("15-N:1/N", [15]),
    ("16-N:16/N", list(range(16, 32))),
    ("N-N:N/N", [31]),
    ("0-N:1/3,1-N:1/3,2-N:1/3", list(range(32))),
    ("1-10:8/12,8-31:24/29,0-31:0/3", list(range(1, 32))),
    ("0, 1, all,  ", list(range(32))),
    ("all:1/2", EVENS),
    ("ALL:1/2", EVENS),
]


@pytest.mark.parametrize(("text", "cpus"), DOCUMENTED + SELF_TEST)
def test_cpu_lists_parse_as_the_kernel_documents_and_tests_them(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text, last=31) == cpus


def test_the_documented_stride_starts_as_documented() -> None:
    assert parse_cpu_list("100-2000:2/25", last=31)[:6] == [100, 101, 125, 126, 150, 151]


def test_n_is_the_last_cpu_given() -> None:
    assert parse_cpu_list("N", last=3) == [3]
    assert parse_cpu_list("all", last=3) == [0, 1, 2, 3]
    assert parse_cpu_list("2-N:1/2", last=7) == [2, 4, 6]


# lib/test_bitmap.c parselist_tests that the kernel refuses (EINVAL, EOVERFLOW), with what
# each breaks: bitmap_parse_region's grammar, or bitmap_check_region's rules.
REFUSED = [
    ("al", "'al' is not a CPU or range of CPUs below 8192"),
    ("alll", "'alll' is not a CPU or range of CPUs below 8192"),
    ("-1", "'-1' is not a CPU or range of CPUs below 8192"),
    ("-0", "'-0' is not a CPU or range of CPUs below 8192"),
    ("10-1", "'10-1' is a descending range"),
    ("0-31:", "'0-31:' is not a CPU or range of CPUs below 8192"),
    ("0-31:0", "'0-31:0' is not a CPU or range of CPUs below 8192"),
    ("0-31:0/", "'0-31:0/' is not a CPU or range of CPUs below 8192"),
    ("0-31:0/0", "'0-31:0/0': a group of 0 CPUs"),
    ("0-31:1/0", "'0-31:1/0': a group of 0 CPUs"),
    ("0-31:10/1", "'0-31:10/1': 10 CPUs used of each group of 1"),
    (
        "0-98765432123456789:10/1",
        "'0-98765432123456789:10/1' is not a CPU or range of CPUs below 8192",
    ),
    ("a-31", "'a-31' is not a CPU or range of CPUs below 8192"),
    ("0-a1", "'0-a1' is not a CPU or range of CPUs below 8192"),
    ("a-31:10/1", "'a-31:10/1' is not a CPU or range of CPUs below 8192"),
    ("0-31:a/1", "'0-31:a/1' is not a CPU or range of CPUs below 8192"),
    ("0-\n", "'0-' is not a CPU or range of CPUs below 8192"),
    # A pattern follows a range or all only; a space or comma ends a region, so it cannot
    # stand inside one (bitmap_parse_region: isspace() ends the region).
    ("5:1/2", "'5:1/2' is not a CPU or range of CPUs below 8192"),
    ("0 -3", "'-3' is not a CPU or range of CPUs below 8192"),
    ("0-3 :1/2", "':1/2' is not a CPU or range of CPUs below 8192"),
    ("all-3", "'all-3' is not a CPU or range of CPUs below 8192"),
    # N is upper case only (bitmap_getnum); all is any case (strncasecmp).
    ("0-n", "'0-n' is not a CPU or range of CPUs below 8192"),
    # A size is an unsigned int (bitmap_getnum: EOVERFLOW beyond).
    ("0-7:1/4294967296", "'0-7:1/4294967296': a used or group size beyond 32 bits"),
    # No host has CPU 8192 (CONFIG_NR_CPUS): ERANGE for every kernel.
    ("8192-8192", "'8192-8192' is not a CPU or range of CPUs below 8192"),
    # kernel-parameters.rst: "Use the same on a small 4 core system, and 16-N becomes 16-3
    # and now the same boot input will be flagged as invalid (start > end)."
    ("16-N", "'16-N' is a descending range (N is 3)"),
]


@pytest.mark.parametrize(("text", "problem"), REFUSED)
def test_what_the_kernel_refuses_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_cpu_list(text, last=3)
    assert str(err.value) == problem


@pytest.mark.parametrize("text", ["N", "all", "0-N", "ALL:1/2", "0-7:1/N"])
def test_n_and_all_are_refused_where_no_cpu_count_is_known(text: str) -> None:
    # A file under /sys never holds them: the plain form is read there without a count.
    with pytest.raises(ValueError, match="N and all stand for the last CPU, unknown here"):
        parse_cpu_list(text)


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-1\n", [0, 1]), ("0,2-3\n", [0, 2, 3]), ("\n", []), ("0-8191\n", list(range(MAX_CPUS)))],
)
def test_files_under_sys_are_read_in_their_plain_form(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text) == cpus


def test_a_stride_over_every_cpu_costs_no_more_than_a_range() -> None:
    # Built from whole groups, not CPU by CPU: a list of 70,000 such regions (1 MB) is read
    # in about as long as one of plain ranges.
    assert parse_cpu_list("0-8191:1/2," * 70_000) == list(range(0, MAX_CPUS, 2))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["0", "17", "4294967296"], [0, 17, 4294967296]),
        ([], []),
        (["12", "١٢"], None),  # Arabic-Indic digits: int() takes them, the kernel never prints them
        (["1_0"], None),
        (["+5"], None),
        (["9" * 20], [int("9" * 20)]),
        (["1", "9" * 21], None),  # more than a u64 has
        (["3", "Edge"], None),
        (["", "5"], None),  # as uint(""): split() never gives one, a caller might
    ],
)
def test_a_line_of_counts_is_taken_whole_or_not_at_all(
    fields: list[str], expected: list[int] | None
) -> None:
    assert uints(fields) == expected


def test_interrupts_keep_per_cpu_lines_and_drop_the_summary_ones() -> None:
    text = "\n".join(
        [
            "           CPU0       CPU1       CPU2",
            "  24:         10          0        ١٢   PCI-MSI 1-edge  eth0-TxRx-0",
            "  25:          5          6          7   PCI-MSI 2-edge  eth0-TxRx-1",
            "  26:          1          2   PCI-MSI 3-edge  short",
            "ERR:          0",
            "MIS:          3",
        ]
    )
    cpus, irqs = parse_interrupts(text)
    assert cpus == [0, 1, 2]
    assert [(i.irq, i.counts, i.device, i.queue) for i in irqs] == [("25", (5, 6, 7), "eth0", 1)]


def test_the_queue_irqs_are_the_parsed_ones_and_the_cache_hands_out_copies() -> None:
    text = (ROOT / "tests/fixtures/host128/t1/proc/interrupts").read_text()
    text += "   5: " + "7 " * 128 + " IO-APIC   5-edge      timer\nERR:          0\n"
    cpus, irqs = parse_interrupts(text)
    assert len(cpus) == 128 and len(irqs) == 33 and irqs[-1].name == "timer"
    queues = [i.irq for i in irqs if i.queue is not None]
    assert len(queues) == 32 and queue_irqs(text) == queues
    cpus.append(999)  # a caller's list: the next parse of the same text is not changed
    again, irqs_again = parse_interrupts(text)
    assert again == list(range(128)) and irqs_again == irqs
