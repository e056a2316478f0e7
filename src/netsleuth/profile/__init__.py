"""`netsleuth profile`: kernel stacks sampled per CPU through perf_event_open, split by
context (NET_RX, other softirqs, hard IRQ, kernel, user, idle), the hot NET_RX functions
and their causes. abi.py (records), contexts.py, stacks.py and causes.py are pure; run.py
is the one place that opens events and maps rings."""
