"""Waiting for a netsleuth run's tracefs instance (drops, record --drops, exporter --drops)
before sending the packets it must see."""

from __future__ import annotations

import time
from pathlib import Path

from netsleuth.sources.tracefs import PREFIX, find_tracefs


def instance_of(pid: int) -> Path | None:
    """Where run `pid`'s instance is (or was), None without a mounted tracefs."""
    root = find_tracefs()
    return None if root is None else root / "instances" / f"{PREFIX}{pid}"


def wait_for_drops_event(pid: int, timeout: float = 15.0) -> None:
    """Until run `pid`'s instance has skb:kfree_skb enabled: the run makes the instance,
    then enables the event, and a packet dropped in between is not seen. Polled rather than
    slept for: a busy host can take longer than any fixed pause."""
    deadline = time.monotonic() + timeout
    while True:
        inst = instance_of(pid)
        enable = None if inst is None else inst / "events" / "skb" / "kfree_skb" / "enable"
        try:
            if enable is not None and enable.read_text().strip() == "1":
                return
        except OSError:
            pass  # not made yet, or removed: the deadline decides
        assert time.monotonic() < deadline, f"run {pid} never enabled skb:kfree_skb"
        time.sleep(0.02)
