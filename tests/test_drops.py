"""drops without the kernel: format files from named kernels, ring-buffer pages built here
from the documented layout, kallsyms, filters and the explanations."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsleuth.drops.events import Drops, Layout, decode
from netsleuth.drops.format import FormatError, PageLayout, parse_format, parse_header_page
from netsleuth.drops.rules import judge
from netsleuth.drops.run import Filters, kernel_filter, parse_filters, tick_after
from netsleuth.drops.symbols import Kallsyms, Location
from netsleuth.drops.tally import DropGroup, group
from netsleuth.findings import Severity

FIX = Path(__file__).parent / "fixtures" / "tracefs"


def fmt(kernel: str) -> Layout:
    return Layout.of(parse_format((FIX / f"kfree_skb-{kernel}.format").read_text()))


# --- format files -----------------------------------------------------------------------


def test_pre_517_kernel_has_no_reason() -> None:
    lay = fmt("5.10")
    assert (lay.event_id, lay.location, lay.protocol, lay.reason) == (1408, (16, 8), (24, 2), None)
    assert lay.size == 26


@pytest.mark.parametrize(
    ("kernel", "protocol", "reason", "no_socket", "not_specified"),
    [
        ("5.17", (24, 2), (28, 4), 1, 0),  # enum starts at NOT_SPECIFIED
        ("6.0", (24, 2), (28, 4), 2, 1),  # SKB_NOT_DROPPED_YET took 0
        ("6.18", (32, 2), (36, 4), 3, 2),  # rx_sk (6.11) moved the fields; CONSUMED = 1
    ],
)
def test_reason_offsets_and_numbers_come_from_the_text(
    kernel: str,
    protocol: tuple[int, int],
    reason: tuple[int, int],
    no_socket: int,
    not_specified: int,
) -> None:
    lay = fmt(kernel)
    assert lay.location == (16, 8)
    assert (lay.protocol, lay.reason) == (protocol, reason)
    names = {v: k for k, v in lay.reason_names.items()}
    assert names["NO_SOCKET"] == no_socket
    assert names["NOT_SPECIFIED"] == not_specified


def test_6_18_text_is_parsed_whole() -> None:
    f = parse_format((FIX / "kfree_skb-6.18.format").read_text())
    assert f.fields["rx_sk"].offset == 24 and f.fields["rx_sk"].ctype == "void *"
    assert f.fields["common_pid"].signed and not f.fields["protocol"].signed
    assert f.symbols["reason"][74] == "UNHANDLED_PROTO"
    assert f.symbols["reason"][128] == "MAX"
    assert f.size == 40


def test_format_errors_are_named() -> None:
    with pytest.raises(FormatError, match="name"):
        parse_format("garbage")
    text = (FIX / "kfree_skb-5.10.format").read_text().replace("location;", "where;")
    with pytest.raises(FormatError, match="location"):
        Layout.of(parse_format(text))


def test_header_page() -> None:
    page = parse_header_page((FIX / "header_page-6.18").read_text())
    assert page == PageLayout(8, 8, 16, 4096)
    assert parse_header_page((FIX / "header_page-6.18").read_text(), 8192).page_size == 8192


# --- ring-buffer pages ------------------------------------------------------------------
# Built here from the layout in kernel/trace/ring_buffer.c (struct buffer_data_page and
# struct ring_buffer_event), independently of the C walk.

PAGE = PageLayout(8, 8, 16, 4096)


def record(
    lay: Layout, location: int, protocol: int, reason: int, etype: int | None = None
) -> bytes:
    rec = bytearray(lay.size)
    struct.pack_into("<H", rec, 0, lay.event_id if etype is None else etype)
    struct.pack_into("<Q", rec, lay.location[0], location)
    struct.pack_into("<H", rec, lay.protocol[0], protocol)
    if lay.reason is not None:
        struct.pack_into("<I", rec, lay.reason[0], reason)
    rec += bytes(-len(rec) % 4)
    return bytes(rec)


def small(data: bytes, delta: int = 5) -> bytes:
    """type_len = words of data (1..28)."""
    return struct.pack("<I", (delta << 5) | (len(data) // 4)) + data


def big(data: bytes) -> bytes:
    """type_len 0: array[0] = data length + 4."""
    return struct.pack("<II", 7 << 5, len(data) + 4) + data


TIME_EXTEND = struct.pack("<II", (3 << 5) | 30, 1)
TIME_STAMP = struct.pack("<II", (3 << 5) | 31, 1)


def page(events: bytes, *, missed: int | None = None, commit: int | None = None) -> bytes:
    size = len(events) if commit is None else commit
    flags = 0
    tail = b""
    if missed is not None:
        flags = (1 << 31) | (1 << 30)
        tail = struct.pack("<Q", missed)
    head = struct.pack("<QQ", 123456789, size | flags)
    body = head + events + tail
    return body + bytes(PAGE.page_size - len(body))


def test_pages_decode_to_the_fields_written() -> None:
    # A table that lists CONSUMED (6.18's does not: since 6.3 kfree_skb_reason() sends
    # SKB_CONSUMED to consume_skb), to check that such events are not counted as drops.
    lay = replace(fmt("6.18"), reason_names={**fmt("6.18").reason_names, 1: "CONSUMED"})
    e1 = record(lay, 0xFFFFFFFF81ED8650 + 0x92, 0x0004, 2)
    e2 = record(lay, 0xFFFFFFFF82046F4C, 0x0800, 3)
    consumed = record(lay, 0xFFFFFFFF81000000, 0x0800, 1)
    foreign = record(lay, 0xDEAD, 0x86DD, 3, etype=lay.event_id + 1)
    pad = struct.pack("<II", (1 << 5) | 29, 12) + bytes(8)  # discarded: array[0] = total - 4
    one = page(small(e1) + TIME_EXTEND + big(e2) + pad + small(foreign) + small(consumed))
    two = page(TIME_STAMP + small(e2) + small(e1), missed=17)
    d = decode(one + two, PAGE, lay)
    assert d.location.tolist() == [
        0xFFFFFFFF81ED8650 + 0x92,
        0xFFFFFFFF82046F4C,
        0xFFFFFFFF82046F4C,
        0xFFFFFFFF81ED8650 + 0x92,
    ]
    assert d.protocol.tolist() == [4, 0x800, 0x800, 4]
    assert d.reason.tolist() == [2, 3, 3, 2]
    assert (d.missed, d.bad_pages) == (17, 0)


def test_pre_reason_records_have_reason_minus_one() -> None:
    lay = fmt("5.10")
    d = decode(page(small(record(lay, 0xFFFFFFFF81000010, 4, 0))), PAGE, lay)
    assert d.reason.tolist() == [-1] and d.protocol.tolist() == [4]


def test_a_corrupt_page_is_counted_not_guessed() -> None:
    lay = fmt("6.18")
    good = page(small(record(lay, 1, 4, 2)))
    liar = page(small(record(lay, 2, 4, 2)), commit=5000)  # commit beyond the page
    cut = page(small(record(lay, 3, 4, 2)), commit=30)  # the event runs past the commit
    d = decode(good + liar + cut, PAGE, lay)
    assert d.location.tolist() == [1]
    assert d.bad_pages == 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=600)), max_size=3))
def test_random_pages_never_crash(pages: list[tuple[int, bytes]]) -> None:
    lay = fmt("6.18")
    raw = b"".join(
        (struct.pack("<QQ", 0, commit) + body).ljust(PAGE.page_size, b"\0")
        for commit, body in pages
    )
    d = decode(raw, PAGE, lay)
    assert len(d.location) == len(d.protocol) == len(d.reason) <= len(raw) // 44


# --- symbols ----------------------------------------------------------------------------

KALLSYMS = """\
ffffffff82046a90 T __udp4_lib_rcv
ffffffff81e64e60 t __netif_receive_skb_core.constprop.0
ffffffff81ed8650 t stp_pdu_rcv
ffffffff81ed8700 t stp_proto_register
ffffffff81e50000 D some_data
ffffffffc0001000 t ixgbe_clean_rx_irq\t[ixgbe]
"""


def test_addresses_resolve_to_function_and_offset() -> None:
    syms = Kallsyms.from_text(KALLSYMS)
    got = syms.resolve(
        np.array([0xFFFFFFFF81ED86E2, 0xFFFFFFFF82046F4C, 0xFFFFFFFFC0001010, 0x1000], np.uint64)
    )
    assert got[0] == Location("stp_pdu_rcv", 0x92)
    assert got[1] is not None and got[1].text == "__udp4_lib_rcv+0x4bc"
    assert got[2] == Location("ixgbe_clean_rx_irq [ixgbe]", 0x10)
    assert got[3] is None
    assert not syms.restricted


def test_hidden_addresses_are_reported_not_misnamed() -> None:
    text = "0000000000000000 T _text\n0000000000000000 t stp_pdu_rcv\n"
    syms = Kallsyms.from_text(text)
    assert syms.restricted
    assert syms.resolve(np.array([0xFFFFFFFF81ED86E2], np.uint64)) == [None]


# --- filters ----------------------------------------------------------------------------


def test_filters_parse_and_become_a_kernel_filter() -> None:
    f = parse_filters(("protocol=802.2", "protocol=0x86dd", "reason=no_socket"))
    assert f == Filters(frozenset({4, 0x86DD}), frozenset({"NO_SOCKET"}))
    assert kernel_filter(f, fmt("6.18")) == (
        "(protocol == 4 || protocol == 34525) && (reason == 3)"
    )
    assert kernel_filter(f, fmt("6.0")) == ("(protocol == 4 || protocol == 34525) && (reason == 2)")
    assert kernel_filter(Filters(), fmt("6.18")) is None


def test_an_unknown_reason_is_told_the_kernels_reasons_without_its_sentinel() -> None:
    # 5.17's table ends in { 6, "MAX" } (FNe(MAX), include/trace/events/skb.h): no reason.
    with pytest.raises(ValueError) as err:
        kernel_filter(parse_filters(("reason=NO_SUCH",)), fmt("5.17"))
    assert str(err.value) == (
        "reason NO_SUCH unknown to this kernel; it has: NOT_SPECIFIED, NO_SOCKET, "
        "PKT_TOO_SMALL, SOCKET_FILTER, TCP_CSUM, UDP_CSUM"
    )


@pytest.mark.parametrize(
    ("exprs", "kernel", "message"),
    [
        (("protocol",), "6.18", "use protocol="),
        (("colour=red",), "6.18", "keys are"),
        (("protocol=bogus",), "6.18", "unknown protocol"),
        (("reason=NO_SUCH",), "6.18", "unknown to this kernel"),
        (("reason=NO_SOCKET",), "5.10", "no drop reason"),
    ],
)
def test_bad_filters_say_why(exprs: tuple[str, ...], kernel: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kernel_filter(parse_filters(exprs), fmt(kernel))


# --- explanations -----------------------------------------------------------------------


def grp(func: str | None, reason: str | None, proto: int, count: int = 10) -> DropGroup:
    loc = Location(func, 0x92) if func else None
    return DropGroup(0xFFFFFFFF81ED86E2, loc, reason, proto, count, count / 5)


def test_incident_2_stp_frames_are_explained_as_harmless() -> None:
    (f,) = judge([grp("stp_pdu_rcv", "NOT_SPECIFIED", 0x0004, 60)])
    assert f.id == "drops.location" and f.severity == Severity.INFO
    assert "spanning-tree" in f.explanation and "rx_dropped" in f.explanation
    assert f.refs == ("linux-nohandler-rx-dropped",)
    assert f.evidence["location"] == "stp_pdu_rcv" and f.evidence["offset"] == "0x92"
    assert f.evidence["protocol_name"] == "802.2" and f.evidence["per_second"] == 12.0


def test_severity_follows_the_reason() -> None:
    got = judge(
        [
            grp("__udp4_lib_rcv", "NO_SOCKET", 0x800),
            grp("enqueue_to_backlog", "CPU_BACKLOG", 0x800),
            grp("__netif_receive_skb_core.constprop.0", "UNHANDLED_PROTO", 0x88CC),
            grp("mystery", "NOT_SPECIFIED", 0x800, 5),
            grp("mystery", "NOT_SPECIFIED", 0x800, 500),
        ]
    )
    sev = [f.severity for f in got]
    assert sev == [Severity.INFO, Severity.WARNING, Severity.INFO, Severity.INFO, Severity.WARNING]
    assert "netdev_max_backlog" in got[1].explanation
    assert "No protocol handler" in got[2].explanation


def test_without_a_reason_the_location_is_used_and_said_so() -> None:
    (f,) = judge([grp("enqueue_to_backlog", None, 0x800)])
    assert f.severity == Severity.WARNING
    assert f.explanation.startswith("(Inferred from the location")
    assert "no reason recorded" in f.summary


def test_grouping_counts_each_location_reason_protocol() -> None:
    loc = np.array([0xFFFFFFFF81000010, 0xFFFFFFFF82000000, 0xFFFFFFFF81000010] * 3, np.uint64)
    proto = np.array([4, 0x800, 4, 4, 0x800, 0x86DD, 4, 0x800, 4], np.uint16)
    reason = np.array([2, 3, 2, -1, 3, 3, 2, 3, 2], np.int64)
    got = group(Drops(loc, proto, reason, 0, 0))
    assert got == {
        (0xFFFFFFFF81000010, 2, 4): 4,
        (0xFFFFFFFF82000000, 3, 0x800): 3,
        (0xFFFFFFFF81000010, -1, 4): 1,
        (0xFFFFFFFF81000010, 3, 0x86DD): 1,
    }


@pytest.mark.parametrize(
    ("now", "want"),
    [
        (10.0, 11.0),  # on time: the next point
        (10.4, 11.0),  # a little late: still the next point, no drift
        (23.7, 24.0),  # a stall past 11-23: one tick covered them, the next is after now
        (24.0, 25.0),  # exactly on a point: the one after it
    ],
)
def test_ticks_skip_the_points_a_stall_passed(now: float, want: float) -> None:
    assert tick_after(0.0, 1.0, now) == pytest.approx(want)
