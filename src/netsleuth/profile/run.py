"""One `profile` run: a cpu-clock perf event and its mmap'ed ring on each chosen CPU, read
until the duration ends or SIGINT/SIGTERM/SIGHUP, then every mapping and descriptor closed (an
ExitStack holds them from the moment each exists, so errors and signals close them too).
The only module of the package that touches the host; decoding, contexts, stacks and
causes are pure."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import select
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from netsleuth.drops.run import load_symbols
from netsleuth.drops.symbols import Kallsyms, base_name
from netsleuth.errors import FacilityError, InputError
from netsleuth.findings import Finding
from netsleuth.profile import abi
from netsleuth.profile._perf import perf_event_open, read_head, write_tail
from netsleuth.profile.causes import judge
from netsleuth.profile.stacks import CpuProfile, Key, Stack, count, folded, per_cpu, symbolise
from netsleuth.signals import stop_on_signals
from netsleuth.sources.cpulist import format_cpu_list, parse_cpu_list

POLL = 0.5  # seconds: the longest a signal that ends the run waits to be noticed
PAGES = 16  # data pages per CPU: 64 KiB, ~3 s of samples at 99 Hz with 30-frame stacks
PROC = Path("/proc")
SYS = Path("/sys")


@dataclass
class Profile:
    cpus: list[CpuProfile]
    stacks: list[Stack]
    seconds: float
    frequency: int
    lost: int
    throttled: int
    malformed: int
    notes: list[str] = field(default_factory=list)

    @cached_property
    def findings(self) -> list[Finding]:
        return judge(self.cpus)

    def folded(self) -> list[str]:
        return folded(self.stacks)

    def to_json(self) -> dict[str, Any]:
        return {
            "cpus": [c.to_json() for c in self.cpus],
            "seconds": round(self.seconds, 3),
            "frequency": self.frequency,
            "samples": sum(c.samples for c in self.cpus),
            "lost_samples": self.lost,
            "throttled": self.throttled,
        }


def online_cpus(sys_root: Path = SYS) -> tuple[int, ...]:
    return tuple(parse_cpu_list((sys_root / "devices/system/cpu/online").read_text()))


def _sysctl(name: str, proc: Path = PROC) -> str:
    try:
        return (proc / "sys/kernel" / name).read_text().strip()
    except OSError:
        return "?"


def refusal(err: OSError, cpu: int, proc: Path = PROC) -> FacilityError:
    """What to do when perf_event_open says no, by errno (perf_event_open(2), ERRORS)."""
    code = err.errno
    what = f"perf_event_open (cpu-clock on CPU {cpu}) failed: {os.strerror(code or 0)}"
    if code in (errno.EACCES, errno.EPERM):
        paranoid = _sysctl("perf_event_paranoid", proc)
        if os.geteuid() == 0:
            return FacilityError(
                f"{what}, even as root: the capabilities were dropped, or a container's "
                "seccomp profile or kernel lockdown blocks perf events; grant CAP_PERFMON "
                "(Linux 5.8+; CAP_SYS_ADMIN before), set kernel.perf_event_paranoid <= 0 "
                f"(it is {paranoid}) or run on the host"
            )
        return FacilityError(
            f"{what}: sampling every task on a CPU needs root, CAP_PERFMON (Linux 5.8+; "
            f"CAP_SYS_ADMIN before) or kernel.perf_event_paranoid <= 0 (it is {paranoid}: "
            "sudo sysctl -w kernel.perf_event_paranoid=0)"
        )
    if code in (errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP, errno.ENOSYS):
        return FacilityError(f"{what}: this kernel has no perf events (CONFIG_PERF_EVENTS)")
    if code in (errno.EMFILE, errno.ENFILE):
        return FacilityError(f"{what}: profile needs one descriptor per CPU (ulimit -n)")
    return FacilityError(what)


class Ring:
    """One CPU's event: its descriptor and its mapping (1 control page + PAGES)."""

    def __init__(self, cpu: int, attr: bytes, pages: int, stack: contextlib.ExitStack) -> None:
        self.cpu = cpu
        try:
            self.fd = perf_event_open(attr, -1, cpu, -1, abi.PERF_FLAG_FD_CLOEXEC)
        except OSError as err:
            raise refusal(err, cpu) from None
        stack.callback(os.close, self.fd)
        page = mmap.PAGESIZE
        try:
            self.mm = mmap.mmap(
                self.fd, (1 + pages) * page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError as err:
            raise FacilityError(
                f"mapping the perf ring of CPU {cpu} failed ({err.strerror}): the locked-"
                "memory limit (kernel.perf_event_mlock_kb, ulimit -l) is too small; root or "
                "CAP_IPC_LOCK lifts it"
            ) from None
        stack.callback(self.mm.close)
        offset: int
        size: int
        offset, size = struct.unpack_from(abi.BO + "QQ", self.mm, abi.PAGE_DATA_OFFSET)
        # data_offset/data_size are 4.1+; before, the data pages follow the control page.
        self.offset, self.size = (offset, size) if size else (page, pages * page)
        self.tail = struct.unpack_from(abi.BO + "Q", self.mm, abi.PAGE_DATA_TAIL)[0]

    def drain(self) -> bytes:
        """The records written since the last drain; their space is handed back at once."""
        head = read_head(self.mm)
        if head == self.tail:
            return b""
        with memoryview(self.mm)[self.offset : self.offset + self.size] as area:
            data = abi.ring_bytes(area, self.tail, head)
        write_tail(self.mm, head)
        self.tail = head
        return data


def sample(
    cpus: tuple[int, ...],
    duration: float | None,
    frequency: int,
    *,
    pages: int = PAGES,
    on_start: Callable[[], None] | None = None,
) -> tuple[Counter[Key], abi.Records, float, bool]:
    """(stack counts, record stats, seconds sampled, stopped by a signal)."""
    if pages <= 0 or pages & (pages - 1):
        raise ValueError("the ring needs a power-of-two number of data pages")
    attr = abi.attr_bytes(frequency, wakeup_bytes=pages * mmap.PAGESIZE // 2)
    counts: Counter[Key] = Counter()
    stats = abi.Records()

    def drain(rings: list[Ring]) -> None:
        for r in rings:
            data = r.drain()
            if data:
                got = abi.decode(data)
                count(got.samples, counts)
                got.samples.clear()
                stats.extend(got)

    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        rings = [Ring(cpu, attr, pages, stack) for cpu in cpus]
        poller = select.poll()
        for r in rings:
            poller.register(r.fd, select.POLLIN)
        for r in rings:
            try:
                fcntl.ioctl(r.fd, abi.PERF_EVENT_IOC_ENABLE, 0)
            except OSError as err:
                raise refusal(err, r.cpu) from None
        t0 = time.monotonic()
        if on_start is not None:
            on_start()
        while not stop.requested:
            left = POLL if duration is None else duration - (time.monotonic() - t0)
            if left <= 0:
                break
            poller.poll(1000 * min(left, POLL))
            drain(rings)
        seconds = time.monotonic() - t0
        for r in rings:
            fcntl.ioctl(r.fd, abi.PERF_EVENT_IOC_DISABLE, 0)
        drain(rings)
    return counts, stats, seconds, stop.requested


def kallsyms(notes: list[str]) -> Kallsyms:
    """The kernel's symbols; hidden addresses get one note, saying what that means here
    (load_symbols' own note would say the same a second time)."""
    mine: list[str] = []
    syms = load_symbols(mine)
    if syms.restricted:
        mine = [
            f"kernel addresses are hidden (kernel.kptr_restrict is "
            f"{_sysctl('kptr_restrict')}, or no CAP_SYSLOG): without names only user, idle "
            "(pid 0) and kernel time can be told apart; run as root with kptr_restrict <= 1"
        ]
    notes += mine
    return syms


def namer(syms: Kallsyms) -> Callable[[list[int]], dict[int, str]]:
    def names(addresses: list[int]) -> dict[int, str]:
        locs = syms.resolve(np.array(addresses, dtype=np.uint64))
        return {
            a: base_name(loc.function.split(" ")[0]) if loc else f"0x{a:x}"
            for a, loc in zip(addresses, locs, strict=True)
        }

    return names


def check_cpus(cpus: tuple[int, ...]) -> None:
    online = online_cpus()
    missing = sorted(set(cpus) - set(online))
    if missing:
        # As cpu/online writes them: a 512-CPU host's list is one short line, not 512 numbers.
        raise InputError(
            "--cpus",
            f"CPU {format_cpu_list(missing)} not online (online: {format_cpu_list(online)})",
        )


def check_frequency(frequency: int, proc: Path = PROC) -> None:
    limit = _sysctl("perf_event_max_sample_rate", proc)
    if limit.isdigit() and frequency > int(limit):
        raise InputError(
            "--frequency", f"{frequency} Hz is above kernel.perf_event_max_sample_rate ({limit})"
        )


def profile(
    cpus: tuple[int, ...],
    duration: float | None,
    frequency: int,
    *,
    on_start: Callable[[], None] | None = None,
    notes: list[str] | None = None,
) -> Profile:
    """Sample kernel stacks on `cpus` for `duration` seconds (None: until a signal)."""
    notes = [] if notes is None else notes
    if not (PROC / "sys/kernel/perf_event_paranoid").exists():
        raise FacilityError("this kernel has no perf events (CONFIG_PERF_EVENTS is off)")
    check_cpus(cpus)
    check_frequency(frequency)
    counts, stats, seconds, signalled = sample(cpus, duration, frequency, on_start=on_start)
    if signalled:
        notes.append(f"stopped by a signal after {seconds:.1f} s")
    if stats.lost:
        notes.append(f"{stats.lost} samples lost: the reader fell behind the ring")
    if stats.throttled:
        notes.append(
            f"sampling throttled {stats.throttled} times (kernel.perf_cpu_time_max_percent)"
        )
    stacks = symbolise(counts, namer(kallsyms(notes)))
    return Profile(
        per_cpu(stacks, cpus),
        stacks,
        seconds,
        frequency,
        stats.lost,
        stats.throttled,
        stats.malformed,
        notes,
    )


def probe(cpu: int) -> None:
    """Open and close one event, so a missing privilege is reported before any waiting."""
    if not (PROC / "sys/kernel/perf_event_paranoid").exists():
        raise FacilityError("this kernel has no perf events (CONFIG_PERF_EVENTS is off)")
    try:
        fd = perf_event_open(abi.attr_bytes(1), -1, cpu, -1, abi.PERF_FLAG_FD_CLOEXEC)
    except OSError as err:
        raise refusal(err, cpu) from None
    os.close(fd)


def hotspot_cpus(findings: list[Finding]) -> tuple[int, ...]:
    """The CPUs doctor's host.softirq_hotspot rule names (host/doctor_rules.py cpus())."""
    return tuple(sorted({int(f.evidence["cpu"]) for f in findings if f.id == HOTSPOT}))


def auto_cpus(notes: list[str], seconds: float = 1.0) -> tuple[int, ...]:
    """--cpus auto: the hot CPUs over a short doctor sample, else every online CPU."""
    from netsleuth.doctor import doctor_live

    hot = hotspot_cpus(doctor_live(2, seconds).findings)
    if hot:
        notes.append(f"--cpus auto: CPU {', '.join(map(str, hot))} flagged by {HOTSPOT}")
        return hot
    notes.append(f"--cpus auto: no {HOTSPOT} over {seconds:g} s, so every online CPU")
    return online_cpus()


HOTSPOT = "host.softirq_hotspot"
