"""The perf_event ABI that `profile` speaks (pure): the perf_event_attr it opens, and the
records the kernel writes into the mmap'ed ring.

Every layout here is from include/uapi/linux/perf_event.h (struct perf_event_attr, struct
perf_event_mmap_page, enum perf_event_type, PERF_CONTEXT_*, PERF_RECORD_MISC_*). Records are
in the host's byte order and 8-byte aligned. tests/test_profile.py holds the attr offsets and
flag bits equal to the system header's, through the compiled helper's attr_layout().
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field

# enum perf_type_id / perf_sw_ids: the hrtimer-driven cpu-clock needs no hardware PMU (VMs).
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_CPU_CLOCK = 0

# enum perf_event_sample_format: the fields a sample carries, in this order in the record.
SAMPLE_IDENTIFIER = 1 << 16
SAMPLE_IP = 1 << 0
SAMPLE_TID = 1 << 1
SAMPLE_TIME = 1 << 2
SAMPLE_ADDR = 1 << 3
SAMPLE_READ = 1 << 4
SAMPLE_CALLCHAIN = 1 << 5
SAMPLE_ID = 1 << 6
SAMPLE_CPU = 1 << 7
SAMPLE_PERIOD = 1 << 8
SAMPLE_STREAM_ID = 1 << 9
# What profile asks for: who ran (pid/tid), where (cpu), when, and the kernel stack.
SAMPLE_TYPE = SAMPLE_TID | SAMPLE_TIME | SAMPLE_CPU | SAMPLE_CALLCHAIN

# struct perf_event_attr: the flags word follows read_format; bits in declaration order.
ATTR_SIZE = 112  # PERF_ATTR_SIZE_VER5 (4.1+): up to sample_max_stack and __reserved_2
OFFSETS = {
    "type": 0,
    "size": 4,
    "config": 8,
    "sample_freq": 16,  # union with sample_period
    "sample_type": 24,
    "read_format": 32,
    "wakeup_watermark": 48,  # union with wakeup_events
    "sample_max_stack": 108,
}
FLAGS_OFFSET = 40
FLAG_BITS = {
    "disabled": 0,
    "exclude_user": 4,
    "freq": 10,
    "watermark": 14,
    "exclude_callchain_user": 22,
}

# perf_event_open flags and ioctls (_IO('$', 0) and _IO('$', 1)).
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401

# struct perf_event_mmap_page: the control page in front of the data pages.
PAGE_DATA_HEAD = 1024
PAGE_DATA_TAIL = 1032
PAGE_DATA_OFFSET = 1040  # data_offset and data_size: 4.1+; zero before, data at page 1
PAGE_DATA_SIZE = 1048

# enum perf_event_type
RECORD_LOST = 2
RECORD_THROTTLE = 5
RECORD_UNTHROTTLE = 6
RECORD_SAMPLE = 9
RECORD_LOST_SAMPLES = 13

# perf_event_header.misc & PERF_RECORD_MISC_CPUMODE_MASK
CPUMODE_MASK = 7
CPUMODE_KERNEL = 1
CPUMODE_USER = 2
CPUMODE_HYPERVISOR = 3
CPUMODE_GUEST_KERNEL = 4
CPUMODE_GUEST_USER = 5

# enum perf_callchain_context: markers inside ips[] saying whose frames follow.
CONTEXT_HV = 2**64 - 32
CONTEXT_KERNEL = 2**64 - 128
CONTEXT_USER = 2**64 - 512
CONTEXT_GUEST = 2**64 - 2048
CONTEXT_GUEST_KERNEL = 2**64 - 2176
CONTEXT_GUEST_USER = 2**64 - 2560
CONTEXT_MAX = 2**64 - 4095  # every value at or above this is a marker, not an address

BO = "<" if sys.byteorder == "little" else ">"
_HEADER = struct.Struct(BO + "IHH")
_U64 = struct.Struct(BO + "Q")
_U32X2 = struct.Struct(BO + "II")


def attr_bytes(
    frequency: int,
    *,
    sample_type: int = SAMPLE_TYPE,
    wakeup_bytes: int = 0,
    exclude_user: bool = False,
) -> bytes:
    """A perf_event_attr for the cpu-clock event sampled `frequency` times a second, opened
    disabled (enabled on every CPU at once). User stacks are never walked
    (exclude_callchain_user): a user-mode sample still counts for the user share, and its
    callchain is empty. `wakeup_bytes` > 0 wakes poll() when that much data is waiting."""
    buf = bytearray(ATTR_SIZE)
    struct.pack_into(BO + "II", buf, OFFSETS["type"], PERF_TYPE_SOFTWARE, ATTR_SIZE)
    struct.pack_into(BO + "Q", buf, OFFSETS["config"], PERF_COUNT_SW_CPU_CLOCK)
    struct.pack_into(BO + "Q", buf, OFFSETS["sample_freq"], frequency)
    struct.pack_into(BO + "Q", buf, OFFSETS["sample_type"], sample_type)
    flags = ["disabled", "freq", "exclude_callchain_user"]
    if exclude_user:
        flags.append("exclude_user")
    if wakeup_bytes:
        flags.append("watermark")
        struct.pack_into(BO + "I", buf, OFFSETS["wakeup_watermark"], wakeup_bytes)
    word = sum(1 << FLAG_BITS[f] for f in flags)
    struct.pack_into(BO + "Q", buf, FLAGS_OFFSET, word)
    return bytes(buf)


class RingError(ValueError):
    """The control page says something impossible (head behind tail, more than the ring)."""


def ring_bytes(data: bytes | bytearray | memoryview, tail: int, head: int) -> bytes:
    """The records between data_tail and data_head of a ring whose data area is `data`
    (a power-of-two number of pages). head and tail only grow; the offset in the area is
    the value modulo its size, so a record that does not fit before the end continues at
    the start (kernel/events/ring_buffer.c, perf_output_copy)."""
    size = len(data)
    n = head - tail
    if n < 0 or n > size:
        raise RingError(f"data_head {head} and data_tail {tail} span {n} bytes of {size}")
    start = tail % size
    if start + n <= size:
        return bytes(data[start : start + n])
    return bytes(data[start:]) + bytes(data[: n - (size - start)])


@dataclass(frozen=True, slots=True)
class Sample:
    pid: int
    tid: int
    time: int
    cpu: int
    cpumode: int  # header.misc & CPUMODE_MASK
    chain: tuple[int, ...]  # ips[] as written: context markers and addresses, leaf first


@dataclass
class Records:
    samples: list[Sample] = field(default_factory=list)
    lost: int = 0  # samples the kernel could not write (PERF_RECORD_LOST, LOST_SAMPLES)
    throttled: int = 0  # PERF_RECORD_THROTTLE: sampling paused for exceeding the rate limit
    unthrottled: int = 0
    other: int = 0  # record types profile does not ask for
    malformed: int = 0  # bytes that are no record: the rest of that chunk is skipped

    def extend(self, more: Records) -> None:
        self.samples.extend(more.samples)
        self.lost += more.lost
        self.throttled += more.throttled
        self.unthrottled += more.unthrottled
        self.other += more.other
        self.malformed += more.malformed


_BEFORE_CALLCHAIN = (  # (bit, bytes) of the fixed-size sample fields, in record order
    (SAMPLE_IDENTIFIER, 8),
    (SAMPLE_IP, 8),
    (SAMPLE_TID, 8),
    (SAMPLE_TIME, 8),
    (SAMPLE_ADDR, 8),
    (SAMPLE_ID, 8),
    (SAMPLE_STREAM_ID, 8),
    (SAMPLE_CPU, 8),
    (SAMPLE_PERIOD, 8),
)


def decode(data: bytes, sample_type: int = SAMPLE_TYPE) -> Records:
    """Every record in `data` (whole records, as between tail and head). A header whose
    size is under 8, not a multiple of 8 or past the end stops the walk: nothing after it
    can be located (counted in `malformed`)."""
    if sample_type & SAMPLE_READ:
        raise ValueError("PERF_SAMPLE_READ has a variable layout: not supported")
    out = Records()
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 8:
            out.malformed += 1
            break
        rtype, misc, size = _HEADER.unpack_from(data, pos)
        if size < 8 or size % 8 or pos + size > end:
            out.malformed += 1
            break
        body = pos + 8
        if rtype == RECORD_SAMPLE:
            sample = _sample(data, body, pos + size, misc, sample_type)
            if sample is None:
                out.malformed += 1
            else:
                out.samples.append(sample)
        elif rtype == RECORD_LOST and size >= 24:  # u64 id, u64 lost
            out.lost += _U64.unpack_from(data, body + 8)[0]
        elif rtype == RECORD_LOST_SAMPLES and size >= 16:  # u64 lost
            out.lost += _U64.unpack_from(data, body)[0]
        elif rtype == RECORD_THROTTLE:
            out.throttled += 1
        elif rtype == RECORD_UNTHROTTLE:
            out.unthrottled += 1
        else:
            out.other += 1
        pos += size
    return out


def _sample(data: bytes, pos: int, end: int, misc: int, sample_type: int) -> Sample | None:
    pid = tid = time = cpu = 0
    for bit, width in _BEFORE_CALLCHAIN:
        if not sample_type & bit:
            continue
        if pos + width > end:
            return None
        if bit == SAMPLE_TID:
            pid, tid = _U32X2.unpack_from(data, pos)
        elif bit == SAMPLE_TIME:
            time = _U64.unpack_from(data, pos)[0]
        elif bit == SAMPLE_CPU:
            cpu = _U32X2.unpack_from(data, pos)[0]
        pos += width
    chain: tuple[int, ...] = ()
    if sample_type & SAMPLE_CALLCHAIN:
        if pos + 8 > end:
            return None
        nr = _U64.unpack_from(data, pos)[0]
        if nr > (end - pos - 8) // 8:
            return None
        chain = struct.unpack_from(f"{BO}{nr}Q", data, pos + 8)
    return Sample(pid, tid, time, cpu, misc & CPUMODE_MASK, chain)


def kernel_frames(chain: tuple[int, ...]) -> tuple[int, ...]:
    """The addresses after PERF_CONTEXT_KERNEL up to the next marker (leaf first)."""
    out: list[int] = []
    inside = False
    for ip in chain:
        if ip >= CONTEXT_MAX:
            if inside:
                break
            inside = ip == CONTEXT_KERNEL
        elif inside:
            out.append(ip)
    return tuple(out)


def user_mode(sample: Sample) -> bool:
    """The CPU was running user code when the timer fired: the sample's cpumode says so,
    or its chain holds user frames and no kernel frames (get_perf_callchain in
    kernel/events/callchain.c writes the kernel part first, then the user part)."""
    if sample.cpumode in (CPUMODE_USER, CPUMODE_GUEST_USER):
        return True
    return CONTEXT_USER in sample.chain and CONTEXT_KERNEL not in sample.chain
