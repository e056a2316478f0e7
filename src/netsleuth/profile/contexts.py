"""Which context a sample ran in, from its symbolised kernel stack (pure).

The stack is walked from the leaf towards the root and the first context boundary met
decides: a NET_RX softirq handler running on top of an interrupted idle loop is NET_RX,
an interrupt taken in a syscall is hard IRQ. The boundary functions are those the kernel
enters each context through:
- softirq actions registered with open_softirq() (kernel/softirq.c softirq_init,
  net/core/dev.c net_dev_init, kernel/time/timer.c, kernel/rcu/tree.c, block/blk-mq.c,
  lib/irq_poll.c, kernel/sched/fair.c, kernel/time/hrtimer.c) and the loop that runs them
  (handle_softirqs since 6.9, __do_softirq before; run_ksoftirqd when deferred to the thread);
- hard IRQ entry (arch/x86/include/asm/idtentry.h: asm_sysvec_*, sysvec_*, __sysvec_*,
  common_interrupt; kernel/irq/chip.c and handle.c for the generic flow handlers; arm64
  el1_interrupt and gic_handle_irq);
- the idle loop (kernel/sched/idle.c do_idle, cpuidle_idle_call, default_idle_call,
  cpu_idle_poll; arch/x86/kernel/process.c default_idle; drivers/cpuidle/cpuidle.c;
  drivers/idle/intel_idle.c; drivers/acpi/processor_idle.c).
A kernel sample with none of them is the kernel working for a task (syscall, page fault,
kernel thread), except in the idle task (pid 0), which is idle. So is a sample in the
scheduler or in the return from an interrupt (kernel/entry/common.c irqentry_exit,
kernel/sched/core.c preempt_schedule_irq): the handler is done, the asm_sysvec_* frame
below is only the way back to the task, and nothing sleeps in hard IRQ.

cpu-clock is an hrtimer: it cannot fire while interrupts are disabled, so time in hard IRQ
handlers (and in irq-off sections) shows up where interrupts are enabled again. The hard
IRQ share is a lower bound; softirqs run with interrupts on and are sampled where they are.
"""

from __future__ import annotations

NET_RX = "net_rx"
SOFTIRQ_OTHER = "softirq_other"
HARDIRQ = "hardirq"
KERNEL = "kernel"
USER = "user"
IDLE = "idle"
CONTEXTS = (NET_RX, SOFTIRQ_OTHER, HARDIRQ, KERNEL, USER, IDLE)

NET_RX_ACTION = "net_rx_action"
SOFTIRQ_FUNCTIONS = frozenset(
    {
        "net_tx_action",
        "run_timer_softirq",
        "tasklet_action",
        "tasklet_hi_action",
        "blk_done_softirq",
        "irq_poll_softirq",
        "run_rebalance_domains",  # SCHED_SOFTIRQ before 6.10
        "sched_balance_softirq",  # SCHED_SOFTIRQ since 6.10
        "hrtimer_run_softirq",
        "rcu_core_si",
        "rcu_process_callbacks",  # RCU_SOFTIRQ before 4.20
        "handle_softirqs",
        "__do_softirq",
        "do_softirq",
        "run_ksoftirqd",
    }
)
HARDIRQ_FUNCTIONS = frozenset(
    {
        "common_interrupt",
        "__common_interrupt",
        "asm_common_interrupt",
        "do_IRQ",
        "handle_irq_event",
        "handle_irq_event_percpu",
        "__handle_irq_event_percpu",
        "handle_edge_irq",
        "handle_fasteoi_irq",
        "handle_percpu_irq",
        "handle_percpu_devid_irq",
        "generic_handle_irq",
        "generic_handle_domain_irq",
        "hrtimer_interrupt",
        "smp_apic_timer_interrupt",  # before 5.8
        "el1_interrupt",
        "gic_handle_irq",
    }
)
HARDIRQ_PREFIXES = ("asm_sysvec_", "sysvec_", "__sysvec_")
TASK_FUNCTIONS = frozenset(
    {
        "irqentry_exit",
        "irqentry_exit_to_user_mode",
        "irqentry_exit_cond_resched",
        "raw_irqentry_exit_cond_resched",
        "preempt_schedule_irq",
        "exit_to_user_mode_loop",
        "schedule",
        "__schedule",
    }
)
IDLE_FUNCTIONS = frozenset(
    {
        "do_idle",
        "cpu_startup_entry",
        "cpuidle_idle_call",
        "cpuidle_enter",
        "cpuidle_enter_state",
        "cpu_idle_poll",
        "default_idle_call",
        "default_idle",
        "arch_cpu_idle",
        "native_safe_halt",
        "pv_native_safe_halt",
        "acpi_idle_enter",
        "acpi_idle_do_entry",
        "acpi_safe_halt",
        "intel_idle",
        "intel_idle_irq",
        "mwait_idle",
        "poll_idle",
    }
)


def boundary(function: str) -> str | None:
    """The context `function` is an entry point of, or None."""
    if function == NET_RX_ACTION:
        return NET_RX
    if function in SOFTIRQ_FUNCTIONS:
        return SOFTIRQ_OTHER
    if function in HARDIRQ_FUNCTIONS or function.startswith(HARDIRQ_PREFIXES):
        return HARDIRQ
    if function in IDLE_FUNCTIONS:
        return IDLE
    if function in TASK_FUNCTIONS:
        return KERNEL
    return None


def context_of(frames: tuple[str, ...], *, user: bool, idle_task: bool) -> tuple[str, int]:
    """(context, index of the boundary frame or -1) for a stack of function names, leaf
    first. `user`: the CPU was in user mode; `idle_task`: the sample's pid is 0."""
    if user:
        return USER, -1
    for i, fn in enumerate(frames):
        ctx = boundary(fn)
        if ctx == KERNEL and idle_task:
            return IDLE, i  # the idle task scheduling away
        if ctx is not None:
            return ctx, i
    return (IDLE if idle_task else KERNEL), -1
