"""One `drops` run: a private tracefs instance with skb:kfree_skb, read until the duration
ends or SIGINT/SIGTERM/SIGHUP, then everything removed. The only module here that touches the
host; parsing, grouping and rules are pure."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from netsleuth.drops.events import Layout, decode
from netsleuth.drops.format import (
    DEFAULT_PAGE,
    FormatError,
    PageLayout,
    parse_format,
    parse_header_page,
)
from netsleuth.drops.rules import judge
from netsleuth.drops.symbols import Kallsyms
from netsleuth.drops.tally import DropGroup, Key, group, groups
from netsleuth.errors import FacilityError, InputError
from netsleuth.ethertypes import ETH_P
from netsleuth.findings import Finding
from netsleuth.signals import stop_on_signals
from netsleuth.sources.tracefs import Instance, Tracefs, tracefs_session

POLL = 0.1  # seconds between drains: 100k drops/s fill ~110 pages/s, the ring holds many more
BUFFER_KB = 8192  # per CPU


@dataclass(frozen=True, slots=True)
class Filters:
    protocols: frozenset[int] = frozenset()
    reasons: frozenset[str] = frozenset()


NO_FILTERS = Filters()

# Names of enum skb_drop_reason that no drop carries (include/net/dropreason-core.h; before
# it dropreason.h and linux/skbuff.h). SKB_DROP_REASON_MAX ends the list, "only for tracing
# code gen": kfree_skb's __print_symbolic table lists it last (FNe(MAX) in
# include/trace/events/skb.h), so a filter on it was taken and matched nothing. The subsystem
# mask is no reason either. SKB_CONSUMED is a real value, not one of these: a consumed packet
# goes to the consume_skb event and kfree_skb's table leaves it out (kernel_filter says so).
SENTINELS = {
    "MAX": "ends the kernel's list of drop reasons",
    "SUBSYS_MASK": "masks the subsystem bits of a drop reason",
}


def parse_filters(exprs: tuple[str, ...]) -> Filters:
    """protocol=802.2|0x0004|4|ipv4 and reason=NO_SOCKET; repeat a key for "or"."""
    protos: set[int] = set()
    reasons: set[str] = set()
    by_name = {v.lower(): k for k, v in ETH_P.items()}
    for expr in exprs:
        key, sep, value = expr.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise ValueError(f"{expr[:40]!r}: use protocol=NAME|NUMBER or reason=NAME")
        shown = repr(expr[:40])
        if key in ("protocol", "proto"):
            if value.lower() in by_name:
                protos.add(by_name[value.lower()])
                continue
            protos.add(_ethertype(value, shown))
        elif key == "reason":
            reason = value.upper().removeprefix("SKB_DROP_REASON_")
            if not reason:
                raise ValueError(f"{shown}: give the reason after SKB_DROP_REASON_")
            if reason in SENTINELS:
                role = SENTINELS[reason]
                raise ValueError(f"{shown}: SKB_DROP_REASON_{reason} {role}; no drop has it")
            reasons.add(reason)
        else:
            raise ValueError(f"{shown}: the keys are protocol and reason")
    return Filters(frozenset(protos), frozenset(reasons))


def _ethertype(text: str, shown: str) -> int:
    """0x86dd or 34525 as a number, ValueError for anything else. int(text, 0) took -1, 1_0,
    digits of other scripts and 0x1ffff, which the tracepoint's protocol cannot hold: it is
    ntohs(skb->protocol), an unsigned short (include/trace/events/skb.h), so the kernel
    filter never matched and the run showed no drops, exit 0."""
    m = re.fullmatch(r"0[xX]([0-9a-fA-F]+)|([0-9]+)", text)
    if m is None:
        raise ValueError(
            f"{shown}: unknown protocol {text[:40]!r}: give a name or a number 0-0xffff"
        )
    hexa, decimal = m.groups()
    base = 16 if hexa else 10
    digits = (hexa or decimal).lstrip("0") or "0"
    # Five digits hold any u16 in either base; int() would refuse 4,300 digits or more.
    if len(digits) > 5 or int(digits, base) > 0xFFFF:
        raise ValueError(f"{shown}: protocol {text[:40]} is beyond 0xffff (16 bits)")
    return int(digits, base)


def kernel_filter(f: Filters, layout: Layout) -> str | None:
    """The same filter in the tracefs filter language, so a flood of other drops never
    enters the ring buffer (Documentation/trace/events.rst, "Event filtering")."""
    parts = []
    if f.protocols:
        parts.append(" || ".join(f"protocol == {p}" for p in sorted(f.protocols)))
    if f.reasons:
        if layout.reason is None:
            raise ValueError("this kernel records no drop reason (before 5.17): no reason filter")
        numbers = {v: k for k, v in layout.reason_names.items()}
        unknown = sorted(r for r in f.reasons if r not in numbers)
        if unknown:
            known = ", ".join(sorted(set(numbers) - set(SENTINELS)))
            raise ValueError(f"reason {', '.join(unknown)} unknown to this kernel; it has: {known}")
        parts.append(" || ".join(f"reason == {numbers[r]}" for r in sorted(f.reasons)))
    if not parts:
        return None
    return " && ".join(f"({p})" for p in parts)


@dataclass
class Report:
    started: float
    seconds: float
    counts: Counter[Key]
    lost_events: int
    missed_on_pages: int
    bad_pages: int
    layout: Layout
    symbols: Kallsyms
    notes: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @cached_property
    def rows(self) -> list[DropGroup]:
        """Groups, biggest first (symbols resolved once: the report is final)."""
        return groups(self.counts, self.seconds, self.symbols, self.layout.reason_names)

    @cached_property
    def findings(self) -> list[Finding]:
        return judge(self.rows)

    def to_json(self, top: int | None = None) -> dict[str, Any]:
        rows = self.rows if top is None else self.rows[:top]
        return {
            "drops": [r.to_json() for r in rows],
            "events": self.events,
            "lost_events": self.lost_events,
            "seconds": round(self.seconds, 3),
            "reason_recorded": self.layout.reason is not None,
        }


@dataclass(frozen=True, slots=True)
class Tick:
    """One interval of a running trace, for a refreshing view."""

    elapsed: float
    seconds: float
    rows: list[DropGroup]  # this interval's groups, rates over `seconds`
    total: int  # drops since the start
    lost_events: int


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise FacilityError(f"{what} is missing ({path})") from None
    except PermissionError:
        raise FacilityError(f"reading {path} needs root: run drops with sudo") from None


def load_symbols(notes: list[str], proc: Path = Path("/proc")) -> Kallsyms:
    try:
        syms = Kallsyms.from_text((proc / "kallsyms").read_text())
    except OSError as err:
        notes.append(f"cannot read {proc / 'kallsyms'} ({err.strerror}): locations are addresses")
        return Kallsyms.from_text("")
    if syms.restricted:
        notes.append(
            "kernel addresses are hidden (kernel.kptr_restrict, or no CAP_SYSLOG): locations "
            "cannot be named; run as root with kptr_restrict <= 1"
        )
    return syms


def page_layout(fs: Tracefs, inst: Instance, notes: list[str]) -> PageLayout:
    size = inst.page_size()
    try:
        return parse_header_page((fs.root / "events" / "header_page").read_text(), size)
    except (OSError, FormatError) as err:
        notes.append(f"events/header_page unreadable ({err}): assuming the 64-bit layout")
        return PageLayout(
            DEFAULT_PAGE.commit_offset,
            DEFAULT_PAGE.commit_size,
            DEFAULT_PAGE.data_offset,
            size or DEFAULT_PAGE.page_size,
        )


def _tracepoint(fs: Tracefs, filters: Filters, notes: list[str]) -> tuple[Layout, str | None]:
    """skb:kfree_skb's record layout on this kernel and the kernel-side filter for
    `filters`, or the reason neither can be had."""
    ev = fs.event_dir("skb", "kfree_skb")
    try:
        layout = Layout.of(parse_format(_read(ev / "format", "the skb:kfree_skb tracepoint")))
    except FormatError as err:
        raise FacilityError(f"cannot read skb:kfree_skb's format on this kernel: {err}") from None
    if layout.reason is None:
        notes.append(
            "this kernel's kfree_skb records no drop reason (added in 5.17): reasons "
            "are inferred from the location where possible"
        )
    try:
        return layout, kernel_filter(filters, layout)
    except ValueError as err:
        raise InputError("--filter", str(err)) from None


@dataclass
class _Reader:
    """What the instance's ring buffers held so far: every drop, the drops since the last
    tick, and the records and pages that could not be read."""

    inst: Instance
    page: PageLayout
    layout: Layout
    base_lost: dict[int, int]
    total: Counter[Key] = field(default_factory=Counter)
    tick: Counter[Key] = field(default_factory=Counter)
    missed: int = 0
    bad: int = 0

    def drain(self) -> None:
        raw = self.inst.read(self.page.page_size)
        if raw:
            d = decode(raw, self.page, self.layout)
            c = group(d)
            self.total.update(c)
            self.tick.update(c)
            self.missed += d.missed
            self.bad += d.bad_pages

    def lost(self) -> int:
        """Events the kernel overwrote before they were read, since the run began."""
        now = self.inst.stats()
        return sum(v - self.base_lost.get(cpu, 0) for cpu, v in now.items())


def tick_after(t0: float, interval: float, now: float) -> float:
    """The first point of the tick grid (t0 + k * interval) after `now`. Points that passed
    while the process was stopped or starved are skipped: the tick just given covers them.
    Adding one interval a tick fired the missed ones one per POLL (a 10 s stall at
    --interval 1: ten ticks 0.1 s apart, each a sample for record --drops)."""
    return t0 + (math.floor((now - t0) / interval) + 1) * interval


def trace(
    *,
    duration: float | None,
    filters: Filters = NO_FILTERS,
    interval: float | None = None,
    on_tick: Callable[[Tick], None] | None = None,
    on_start: Callable[[], None] | None = None,
    buffer_kb: int = BUFFER_KB,
) -> Report:
    """Trace drops until `duration` seconds pass (None: until SIGINT/SIGTERM/SIGHUP)."""
    notes: list[str] = []
    with tracefs_session() as fs:
        if fs.mounted_by_us:
            notes.append(f"mounted tracefs at {fs.root} for this run")
        for name in fs.remove_stale():
            notes.append(f"removed stale tracefs instance {name} (its process is gone)")
        layout, kfilter = _tracepoint(fs, filters, notes)
        symbols = load_symbols(notes)
        with stop_on_signals() as stop, Instance(fs) as inst:
            inst.set_buffer_kb(buffer_kb)
            page = page_layout(fs, inst, notes)
            inst.open_readers()
            reader = _Reader(inst, page, layout, inst.stats())
            try:
                inst.enable("skb", "kfree_skb", kfilter)
            except ValueError as err:
                raise InputError("--filter", str(err)) from None
            if on_start is not None:
                on_start()
            t0 = time.monotonic()
            started = time.time()
            next_tick = t0 + interval if interval else None
            last_tick = t0
            while not stop.requested:
                now = time.monotonic()
                if duration is not None and now - t0 >= duration:
                    break
                reader.drain()
                if next_tick is not None and now >= next_tick and on_tick is not None:
                    rows = groups(reader.tick, now - last_tick, symbols, layout.reason_names)
                    total = sum(reader.total.values())
                    on_tick(Tick(now - t0, now - last_tick, rows, total, reader.lost()))
                    reader.tick.clear()
                    last_tick = now
                    next_tick = tick_after(t0, interval or 1.0, now)
                time.sleep(POLL)
            seconds = time.monotonic() - t0
            # Stop the event, then take what is still in the ring.
            inst.remove_events()
            reader.drain()
            reader.drain()
            lost_events = reader.lost()
        if stop.requested:
            notes.append(f"stopped by a signal after {seconds:.1f} s")
        report = Report(
            started,
            seconds,
            reader.total,
            lost_events,
            reader.missed,
            reader.bad,
            layout,
            symbols,
            notes,
        )
    if fs.outcome:  # known only once the session closed: said as it happened
        notes.append(fs.outcome)
    return report
