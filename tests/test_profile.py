"""profile's pure parts: the perf_event_attr and ring records laid out as
include/uapi/linux/perf_event.h declares them (struct perf_event_attr, struct
perf_event_header, PERF_RECORD_SAMPLE/LOST/THROTTLE/UNTHROTTLE/LOST_SAMPLES, enum
perf_callchain_context), the ring's wrap-around, context attribution of recorded kernel
stacks, the hot functions with their callers, the causes and the findings."""

from __future__ import annotations

import errno
import struct
from collections import Counter
from pathlib import Path

import pytest

from netsleuth.drops.symbols import Kallsyms
from netsleuth.errors import InputError
from netsleuth.findings.catalogue import catalogue_finding
from netsleuth.findings.known_issues import known_issues
from netsleuth.profile import abi
from netsleuth.profile._perf import attr_layout
from netsleuth.profile.causes import causes, judge
from netsleuth.profile.contexts import context_of
from netsleuth.profile.run import check_frequency, hotspot_cpus, namer, refusal
from netsleuth.profile.stacks import Key, count, per_cpu, symbolise
from netsleuth.profile.stacks import folded as fold
from tests.clirun import invoke

# ---- perf_event_attr ------------------------------------------------------------------


def test_attr_offsets_and_flag_bits_match_the_system_header() -> None:
    layout = attr_layout()  # offsetof() and bitfields as <linux/perf_event.h> declares them
    assert layout["offsets"] == abi.OFFSETS
    assert layout["offsets"]["read_format"] + 8 == abi.FLAGS_OFFSET
    assert layout["flags"] == {k: 1 << v for k, v in abi.FLAG_BITS.items()}
    assert (layout["head"], layout["tail"], layout["data_offset"]) == (
        abi.PAGE_DATA_HEAD,
        abi.PAGE_DATA_TAIL,
        abi.PAGE_DATA_OFFSET,
    )


def test_attr_bytes_asks_for_cpu_clock_at_a_frequency_with_kernel_callchains() -> None:
    raw = abi.attr_bytes(99, wakeup_bytes=32768)
    assert len(raw) == 112  # PERF_ATTR_SIZE_VER5
    typ, size, config, freq, stype = struct.unpack_from("=IIQQQ", raw, 0)
    assert (typ, size, config, freq) == (1, 112, 0, 99)  # PERF_TYPE_SOFTWARE, CPU_CLOCK
    assert stype == (1 << 1) | (1 << 2) | (1 << 7) | (1 << 5)  # TID TIME CPU CALLCHAIN
    flags = struct.unpack_from("=Q", raw, 40)[0]
    # disabled (bit 0), freq (10), watermark (14), exclude_callchain_user (22); user
    # samples are kept (bit 4 clear) so the user share can be counted.
    assert flags == (1 << 0) | (1 << 10) | (1 << 14) | (1 << 22)
    assert struct.unpack_from("=I", raw, 48)[0] == 32768


# ---- ring records ---------------------------------------------------------------------

KADDR = 0xFFFFFFFF81000000


def header(rtype: int, misc: int, body: bytes) -> bytes:
    return b"".join([struct.pack("=IHH", rtype, misc, 8 + len(body)), body])


def sample_record(
    pid: int, tid: int, time: int, cpu: int, chain: list[int], *, misc: int = 1
) -> bytes:
    # PERF_SAMPLE_TID {u32 pid, tid}, TIME {u64}, CPU {u32 cpu, res}, CALLCHAIN {u64 nr, ips}
    body = b"".join(
        [
            struct.pack("=II", pid, tid),
            struct.pack("=Q", time),
            struct.pack("=II", cpu, 0),
            struct.pack("=Q", len(chain)),
            struct.pack(f"={len(chain)}Q", *chain),
        ]
    )
    return header(9, misc, body)


def lost_record(lost: int) -> bytes:  # PERF_RECORD_LOST {u64 id, u64 lost}
    return header(2, 0, struct.pack("=QQ", 7, lost))


def throttle_record(rtype: int) -> bytes:  # {u64 time, u64 id, u64 stream_id}
    return header(rtype, 0, struct.pack("=QQQ", 123, 7, 7))


def test_decode_sample_lost_throttle_unthrottle_and_lost_samples() -> None:
    chain = [abi.CONTEXT_KERNEL, KADDR + 0x10, KADDR + 0x2020]
    data = b"".join(
        [
            sample_record(4242, 4243, 10**9, 1, chain),
            lost_record(5),
            throttle_record(5),
            throttle_record(6),
            header(13, 0, struct.pack("=Q", 3)),  # PERF_RECORD_LOST_SAMPLES {u64 lost}
            header(3, 0, b"comm\0\0\0\0" + struct.pack("=II", 1, 1)),  # COMM: not asked for
            sample_record(0, 0, 10**9 + 1, 1, [], misc=2),  # user mode, no user stack
        ]
    )
    got = abi.decode(data)
    assert got.samples[0] == abi.Sample(4242, 4243, 10**9, 1, 1, tuple(chain))
    assert got.samples[1].cpumode == abi.CPUMODE_USER and got.samples[1].chain == ()
    assert (got.lost, got.throttled, got.unthrottled, got.other, got.malformed) == (
        8,
        1,
        1,
        1,
        0,
    )


@pytest.mark.parametrize(
    "bad",
    [
        struct.pack("=IHH", 9, 0, 0),  # size 0 would never advance
        struct.pack("=IHH", 9, 0, 12) + bytes(4),  # not a multiple of 8
        struct.pack("=IHH", 9, 0, 256),  # runs past the data
        bytes(4),  # not even a header
    ],
)
def test_a_record_that_cannot_be_walked_stops_the_chunk(bad: bytes) -> None:
    good = sample_record(1, 1, 1, 0, [abi.CONTEXT_KERNEL, KADDR])
    got = abi.decode(good + bad + good)
    assert len(got.samples) == 1 and got.malformed == 1


def test_a_callchain_longer_than_its_record_is_refused() -> None:
    rec = bytearray(sample_record(1, 1, 1, 0, [abi.CONTEXT_KERNEL, KADDR]))
    struct.pack_into("=Q", rec, 8 + 24, 1000)  # nr = 1000 in a 2-entry record
    got = abi.decode(bytes(rec))
    assert got.samples == [] and got.malformed == 1


def test_a_record_wrapping_at_the_end_of_the_ring_is_reassembled() -> None:
    rec = sample_record(7, 8, 9, 1, [abi.CONTEXT_KERNEL, KADDR + 1, KADDR + 2])
    assert len(rec) == 64
    size = 128
    start = 96  # 32 bytes fit before the end, 32 continue at offset 0
    area = bytearray(size)
    area[start:] = rec[:32]
    area[:32] = rec[32:]
    tail = 5 * size + start  # head and tail only grow: offsets are modulo the size
    assert abi.ring_bytes(area, tail, tail + 64) == rec
    assert abi.decode(abi.ring_bytes(area, tail, tail + 64)).samples[0].pid == 7
    with pytest.raises(abi.RingError):
        abi.ring_bytes(area, tail, tail + size + 8)
    with pytest.raises(abi.RingError):
        abi.ring_bytes(area, tail, tail - 8)


def test_kernel_frames_and_user_mode_from_markers_and_misc() -> None:
    chain = (abi.CONTEXT_KERNEL, 1, 2, abi.CONTEXT_USER, 3, 4)
    assert abi.kernel_frames(chain) == (1, 2)
    assert abi.kernel_frames((abi.CONTEXT_USER, 3)) == ()
    kernel = abi.Sample(1, 1, 0, 0, abi.CPUMODE_KERNEL, chain)
    assert not abi.user_mode(kernel)
    assert abi.user_mode(abi.Sample(1, 1, 0, 0, abi.CPUMODE_USER, ()))
    # cpumode unknown: the markers decide (user frames and no kernel frames).
    assert abi.user_mode(abi.Sample(1, 1, 0, 0, 0, (abi.CONTEXT_USER, 3)))


def test_the_stack_table_stops_growing_with_new_tasks() -> None:
    counts: Counter[Key] = Counter()
    chain = (abi.CONTEXT_KERNEL, KADDR)
    count([abi.Sample(pid, pid, 0, 0, 1, chain) for pid in range(1, 11)], counts, max_keys=4)
    count([abi.Sample(0, 0, 0, 0, 1, chain), abi.Sample(2, 2, 0, 0, 1, chain)], counts, 4)
    assert counts[(0, -1, -1, False, (KADDR,))] == 6  # pids 5-10 past the bound
    assert counts[(0, 2, 2, False, (KADDR,))] == 2  # a task already counted keeps its key
    assert counts[(0, 0, 0, False, (KADDR,))] == 1  # the idle task keeps pid 0
    assert sum(counts.values()) == 12


# ---- contexts ---------------------------------------------------------------------------
# Kernel stacks recorded by `netsleuth profile` on Linux 6.18 (x86_64, ORC unwinder) during
# a UDP flood over veth, leaf first.

SYSCALL = (
    "__local_bh_enable_ip",
    "__dev_queue_xmit",
    "ip_finish_output2",
    "ip_output",
    "ip_send_skb",
    "udp_send_skb",
    "udp_sendmsg",
    "__sys_sendto",
    "__x64_sys_sendto",
    "do_syscall_64",
    "entry_SYSCALL_64_after_hwframe",
)
SOFTIRQ = ("handle_softirqs", "do_softirq", *SYSCALL)
RX_BASE = ("process_backlog", "__napi_poll", "net_rx_action", *SOFTIRQ)
UDP_RX = (
    "__icmp_send",
    "__udp4_lib_rcv",
    "ip_protocol_deliver_rcu",
    "ip_local_deliver_finish",
    "__netif_receive_skb_one_core",
    *RX_BASE,
)
IDLE = (
    "pv_native_safe_halt",
    "default_idle",
    "default_enter_idle",
    "cpuidle_enter_state",
    "cpuidle_enter",
    "do_idle",
    "cpu_startup_entry",
    "rest_init",
    "start_kernel",
)
PAGE_FAULT = ("_raw_spin_unlock_irqrestore", "do_anonymous_page", "exc_page_fault")
TIMER_OVER_IDLE = (
    "run_timer_softirq",
    "handle_softirqs",
    "irq_exit_rcu",
    "sysvec_apic_timer_interrupt",
    "asm_sysvec_apic_timer_interrupt",
    *IDLE,
)
HARDIRQ = ("__sysvec_call_function_single", "sysvec_call_function_single", *PAGE_FAULT)
PREEMPTED = (
    "finish_task_switch",
    "__schedule",
    "schedule",
    "irqentry_exit_to_user_mode",
    "asm_sysvec_apic_timer_interrupt",
)


@pytest.mark.parametrize(
    ("frames", "user", "idle_task", "want"),
    [
        (UDP_RX, False, False, "net_rx"),
        (RX_BASE, False, False, "net_rx"),
        (SOFTIRQ, False, False, "softirq_other"),  # the softirq loop itself
        (TIMER_OVER_IDLE, False, True, "softirq_other"),  # innermost context wins
        (HARDIRQ, False, False, "hardirq"),
        (PREEMPTED, False, False, "kernel"),  # the way back to the task, not the handler
        (PAGE_FAULT, False, False, "kernel"),
        (IDLE, False, True, "idle"),
        (("0xffffffff81234567",), False, True, "idle"),  # pid 0, nothing named
        ((), True, False, "user"),
    ],
)
def test_recorded_stacks_are_attributed_to_their_context(
    frames: tuple[str, ...], user: bool, idle_task: bool, want: str
) -> None:
    assert context_of(frames, user=user, idle_task=idle_task)[0] == want


# ---- stacks, hot functions, causes ------------------------------------------------------

LISTEN = (
    "inet_lhash2_lookup",
    "__inet_lookup_listener",
    "tcp_v4_rcv",
    "ip_protocol_deliver_rcu",
    "ip_local_deliver_finish",
    "__netif_receive_skb_one_core",
    *RX_BASE,
)
RPS_LOCK = (
    "native_queued_spin_lock_slowpath",
    "_raw_spin_lock_irqsave",
    "enqueue_to_backlog",
    "netif_rx_internal",
    *RX_BASE,
)
OTHER_LOCK = ("_raw_spin_lock", "udp_queue_rcv_skb", *UDP_RX[1:])


class FakeKernel:
    """A kallsyms with one 4 KiB function per name, and stacks as return addresses."""

    def __init__(self, names: set[str]) -> None:
        self.base = {n: KADDR + 0x1000 * i for i, n in enumerate(sorted(names))}
        lines = [f"{a:016x} t {n}" for n, a in self.base.items()]
        self.syms = Kallsyms.from_text("\n".join(lines))

    def ips(self, frames: tuple[str, ...]) -> tuple[int, ...]:
        # Leaf: an instruction inside; callers: a return address inside the function.
        return tuple(self.base[f] + (0x10 if i == 0 else 0x20) for i, f in enumerate(frames))


def counts_of(
    kernel: FakeKernel, cpu: int, stacks: list[tuple[tuple[str, ...], int]]
) -> Counter[Key]:
    c: Counter[Key] = Counter()
    for frames, n in stacks:
        c[(cpu, 100, 100, not frames, kernel.ips(frames))] += n
    return c


def test_incident_3_listen_hash_is_named_with_its_callers_and_cause() -> None:
    k = FakeKernel(set(LISTEN + UDP_RX + IDLE))
    counts = counts_of(k, 3, [(LISTEN, 70), (UDP_RX, 30), (IDLE, 20)])
    stacks = symbolise(counts, namer(k.syms))
    (p,) = per_cpu(stacks, [3])
    assert (p.samples, p.contexts["net_rx"], p.contexts["idle"]) == (120, 100, 20)
    rows = {r.function: r for r in p.net_rx_top}
    assert rows["net_rx_action"].inclusive == 100 and rows["net_rx_action"].callers == ()
    lookup = rows["inet_lhash2_lookup"]
    assert (lookup.self_samples, lookup.inclusive, lookup.cause) == (70, 70, "listen-hash")
    assert lookup.callers[:2] == ("__inet_lookup_listener", "tcp_v4_rcv")
    assert lookup.callers[-1] == "net_rx_action"
    assert rows["ip_local_deliver_finish"].inclusive == 100
    assert rows["__icmp_send"].cause is None
    findings = {f.id: f for f in judge([p])}
    hot = findings["profile.hot_function"]
    assert hot.evidence["cause"] == "listen-hash" and hot.count == 70
    assert hot.refs == ("linux-listen-hash-32",)
    assert "netsleuth listen" in hot.evidence["next"]
    sat = findings["profile.softirq_saturated"]
    assert sat.count == 100 and sat.evidence["cpu"] == 3


def test_ordinary_udp_receive_gets_no_hot_function() -> None:
    k = FakeKernel(set(UDP_RX + OTHER_LOCK + PAGE_FAULT))
    counts = counts_of(k, 0, [(UDP_RX, 60), (OTHER_LOCK, 40), (PAGE_FAULT, 400), ((), 500)])
    (p,) = per_cpu(symbolise(counts, namer(k.syms)), [0])
    assert p.causes == {}  # _raw_spin_lock outside enqueue_to_backlog is no RPS contention
    assert judge([p]) == []  # 10% softirq: not saturated either


def test_a_spinlock_under_enqueue_to_backlog_is_rps_contention() -> None:
    k = FakeKernel(set(RPS_LOCK))
    (p,) = per_cpu(symbolise(counts_of(k, 1, [(RPS_LOCK, 60)]), namer(k.syms)), [1])
    assert p.causes == {"rps-backlog-lock": 60}
    assert {r.function: r.cause for r in p.net_rx_top}["native_queued_spin_lock_slowpath"] == (
        "rps-backlog-lock"
    )


def test_prefix_names_in_the_causes_table() -> None:
    (netfilter,) = [c for c in causes() if c.id == "netfilter"]
    assert netfilter.matches(("nf_conntrack_tcp_packet", "nf_hook_slow", "net_rx_action"))
    assert netfilter.matches(("nf_ct_get_tuple", "net_rx_action"))
    assert not netfilter.matches(("nft_something_else", "net_rx_action"))


def test_a_return_address_at_the_next_function_is_its_callers() -> None:
    # A call as the last instruction (to a noreturn function) returns to the next symbol's
    # first byte; the caller is the function before it.
    k = FakeKernel({"a_leaf", "b_caller", "c_next"})
    ips = (k.base["a_leaf"] + 4, k.base["c_next"])
    stacks = symbolise(Counter({(0, 5, 5, False, ips): 1}), namer(k.syms))
    assert stacks[0].frames == ("a_leaf", "b_caller")


def test_unresolved_addresses_stay_hex_and_folded_lines_are_root_first() -> None:
    k = FakeKernel(set(RX_BASE))
    counts = counts_of(k, 2, [(RX_BASE, 3), ((), 2)])
    counts[(2, 0, 0, False, (0x10,))] += 1  # below the first symbol
    stacks = symbolise(counts, namer(k.syms))
    lines = fold(stacks)
    assert "[cpu2];[user] 2" in lines
    assert "[cpu2];[idle];0x10 1" in lines
    rx = next(x for x in lines if "[net_rx]" in x)
    assert rx == "[cpu2];[net_rx];" + ";".join(reversed(RX_BASE)) + " 3"


def test_hidden_kernel_addresses_leave_hex_names_and_coarse_contexts() -> None:
    # kptr_restrict (or no CAP_SYSLOG): kallsyms lists every symbol at address zero.
    syms = Kallsyms.from_text("0000000000000000 t net_rx_action\n0000000000000000 T do_idle")
    assert syms.restricted
    ip = KADDR + 0x42
    counts: Counter[Key] = Counter({(0, 9, 9, False, (ip,)): 2, (0, 0, 0, False, (ip,)): 1})
    stacks = symbolise(counts, namer(syms))
    assert {(s.context, s.frames) for s in stacks} == {
        ("kernel", (f"0x{ip:x}",)),
        ("idle", (f"0x{ip:x}",)),
    }


def test_causes_table_cites_sources_and_known_issues() -> None:
    table = causes()
    assert len({c.id for c in table}) == len(table) >= 6
    issues = known_issues()
    for c in table:
        assert c.source and c.next and c.explanation and (c.functions or c.prefixes)
        assert set(c.refs) <= set(issues), c.id


def test_auto_cpus_are_the_ones_doctors_hotspot_rule_names() -> None:
    hot = [
        catalogue_finding("host.softirq_hotspot", 1, evidence={"cpu": 3}),
        catalogue_finding("host.rps_imbalance", 1, evidence={"cpu": 1}),
    ]
    assert hotspot_cpus(hot) == (3,)
    assert hotspot_cpus(hot[1:]) == ()


# ---- errors -----------------------------------------------------------------------------


def test_refusal_names_the_sysctl_and_the_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    err = refusal(OSError(errno.EACCES, "Permission denied"), 0)
    assert err.exit_code == 3
    assert "perf_event_paranoid" in str(err) and "CAP_PERFMON" in str(err)
    assert "CONFIG_PERF_EVENTS" in str(refusal(OSError(errno.ENOENT, "x"), 1))


def test_frequency_above_the_kernel_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "sys/kernel/perf_event_max_sample_rate").write_text("2500\n")
    check_frequency(2500, tmp_path)
    with pytest.raises(InputError, match="2500"):
        check_frequency(2501, tmp_path)


@pytest.mark.parametrize("cpus", ["zero", "4096"])
def test_cli_refuses_a_bad_or_offline_cpu_list_with_exit_2(cpus: str) -> None:
    result = invoke("profile", "--cpus", cpus, code=2)
    assert "--cpus" in result.err
