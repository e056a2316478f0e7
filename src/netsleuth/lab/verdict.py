"""One frame's events and counter deltas -> what the kernel did with it (pure).

Verdicts, first that applies:
  dropped     an skb of the frame was freed by kfree_skb (location, reason, protocol)
  forwarded   the receiver routed it on (Ip.ForwDatagrams, Ip6OutForwDatagrams)
  reassembly  a fragment the kernel queued for reassembly (ReasmReqds moved, ReasmOKs not)
  delivered   handed to a local protocol (InDelivers moved: a socket, ICMP, a tunnel)
  no_effect   it arrived and the kernel let it go (consume_skb) with no counter moving,
              or it never reached the receiver
  not_sent    the lab could not send it (its link type, its length)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netsleuth.lab.trace import Event

VERDICTS = ("dropped", "forwarded", "reassembly", "delivered", "no_effect", "not_sent")


@dataclass
class Result:
    frame: int
    verdict: str
    location: str | None = None  # kernel function of the drop
    where: str | None = None  # function+offset
    reason: str | None = None
    protocol: int | None = None
    address: int = 0  # of the drop location, for grouping
    counters: dict[str, int] = field(default_factory=dict)
    consumed_at: str | None = None
    replies: int = 0  # skbs the receiver sent back (ICMP errors, SYN-ACKs, RSTs)
    freed_earlier: list[int] = field(default_factory=list)  # frames whose queued skbs it freed
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if self.verdict not in VERDICTS:  # the vocabulary the README documents for the JSON
            raise ValueError(f"frame {self.frame}: unknown lab verdict {self.verdict!r}")
        out: dict[str, Any] = {"frame": self.frame, "verdict": self.verdict}
        if self.verdict == "dropped":
            out.update(
                location=self.location, where=self.where, reason=self.reason, protocol=self.protocol
            )
        if self.consumed_at:
            out["consumed_at"] = self.consumed_at
        out["counters"] = self.counters
        out["replies"] = self.replies
        if self.freed_earlier:
            out["freed_earlier"] = self.freed_earlier
        if self.notes:
            out["notes"] = self.notes
        return out


@dataclass
class Skbs:
    """Which frame (and side) each live skb address belongs to, across frames: a queued
    fragment stays in the kernel until its datagram completes or is discarded."""

    sender_device: str
    owner: dict[int, tuple[int, bool]] = field(default_factory=dict)  # skb -> (frame, reply)


@dataclass(frozen=True, slots=True)
class Named:
    """Resolvers the verdict needs from the tracer (kept apart so this stays pure)."""

    function: Callable[[int], str]  # address -> kernel function
    where: Callable[[int], str]  # address -> function+offset
    reason: Callable[[int], str | None]  # drop reason number -> name


def judge(
    frame: int, events: list[Event], counters: dict[str, int], skbs: Skbs, names: Named
) -> Result:
    r = Result(frame, "no_effect", counters=counters)
    drops: list[Event] = []
    arrived = False
    for ev in events:
        if ev.kind == "rx":
            reply = ev.device == skbs.sender_device
            skbs.owner[ev.skb] = (frame, reply)
            r.replies += reply
            arrived |= not reply
            continue
        known = skbs.owner.pop(ev.skb, None)
        if ev.kind == "consume" and known is None:
            continue  # an skb this process used for something else (netlink, ...)
        owner, reply = known or (frame, False)
        if reply:
            continue
        if owner != frame:
            # A queued skb of an earlier frame (a fragment) freed by this one: dropped, or
            # released as consumed when its queue is killed (inet_frag_rbtree_purge).
            if owner not in r.freed_earlier:
                r.freed_earlier.append(owner)
                how = "dropped" if ev.kind == "drop" else "released"
                r.notes.append(f"{how} frame {owner}'s queued skb at {names.function(ev.location)}")
        elif ev.kind == "drop":
            drops.append(ev)
        elif r.consumed_at is None:
            r.consumed_at = names.function(ev.location)
    if drops:
        _dropped(r, drops, names)
    else:
        _by_counters(r, counters, arrived)
    return r


def _dropped(r: Result, drops: list[Event], names: Named) -> None:
    """The first drop of the frame's own skbs is the verdict."""
    d = drops[0]
    r.verdict = "dropped"
    r.location = names.function(d.location)
    r.where = names.where(d.location)
    r.reason = names.reason(d.reason)
    r.protocol = d.protocol
    r.address = d.location
    if len(drops) > 1:
        r.notes.append(f"{len(drops)} drops (the first is the verdict)")


def _by_counters(r: Result, counters: dict[str, int], arrived: bool) -> None:
    """No drop: what the IP MIB counters moved by says (IPv4 and IPv6 alike)."""

    def moved(v4: str, v6: str) -> bool:
        return bool(counters.get(v4, 0) or counters.get(v6, 0))

    if moved("ForwDatagrams", "Ip6OutForwDatagrams"):
        r.verdict = "forwarded"
    elif moved("ReasmReqds", "Ip6ReasmReqds") and not moved("ReasmOKs", "Ip6ReasmOKs"):
        r.verdict = "reassembly"
    elif moved("InDelivers", "Ip6InDelivers"):
        r.verdict = "delivered"
        if moved("ReasmOKs", "Ip6ReasmOKs"):
            r.notes.append("completed a datagram with the fragments queued before it")
    elif not arrived:
        r.notes.append("it never reached the receiver's stack")
