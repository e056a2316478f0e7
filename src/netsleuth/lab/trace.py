"""Kernel events of the replayed frames, from one private tracefs instance.

Three tracepoints, each filtered in the kernel to this process (`common_pid`):
  net:netif_receive_skb  an skb enters a device's receive path (device name, skb address)
  skb:kfree_skb          an skb is dropped (location, protocol, reason)
  skb:consume_skb        an skb is freed after normal use (location, since Linux 6.3)

Why the pid filter is exact: the lab sends with AF_PACKET on the sender's veth; veth_xmit
hands the skb to the peer with __netif_rx (drivers/net/veth.c veth_forward_skb, no NAPI
unless XDP or GRO is enabled on the peer, neither of which the lab does), which queues it
on this CPU's backlog and raises NET_RX; the softirq then runs when the send path
re-enables bottom halves (local_bh_enable -> do_softirq), in this task, before send()
returns. Every event of the frame therefore carries this pid, and drops of other
processes' traffic on the host never enter the ring. If the softirq were pushed to
ksoftirqd (a flood elsewhere on this CPU), the frame's backlog would still be queued when
send() returns: replay checks softnet_stat's backlog column and waits for it to drain.

The skb addresses tie drops to sides: an skb first seen entering the sender's device is a
reply from the receiver (an ICMP error, a SYN-ACK) and its fate is not the frame's.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netsleuth.drops.events import NOT_DROPS
from netsleuth.drops.format import FormatError, PageLayout, parse_format

# The drops tracer's readers of header_page and kallsyms, shared rather than copied.
from netsleuth.drops.run import load_symbols, page_layout
from netsleuth.drops.symbols import Kallsyms
from netsleuth.errors import FacilityError
from netsleuth.sources import _ringbuf
from netsleuth.sources.tracefs import Instance, Tracefs

EVENTS = (("net", "netif_receive_skb"), ("skb", "kfree_skb"), ("skb", "consume_skb"))
BUFFER_KB = 1024  # per CPU; a frame makes a handful of events, read after every frame


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "rx", "drop", "consume"
    skb: int
    device: str = ""  # rx
    location: int = 0  # drop, consume
    protocol: int = 0  # drop: host order (the tracepoint stores ntohs(skb->protocol))
    reason: int = -1  # drop; -1 when the kernel records none (before 5.17)


@dataclass(frozen=True, slots=True)
class _Decoder:
    kind: str
    fields: dict[str, tuple[int, int]]  # name -> (offset, size)


def _uint(buf: bytes, at: int, size: int) -> int:
    return int.from_bytes(buf[at : at + size], "little")


class Tracer:
    """The lab's tracefs instance; created and removed with the Instance machinery."""

    def __init__(self, fs: Tracefs, pid: int, device: str | None = None) -> None:
        """Filtered to this pid's events; with `device`, only netif_receive_skb on that
        device, from any task on any CPU (the RPS measurement: where each frame ran)."""
        self.fs = fs
        self.pid = pid
        self.device = device
        self.inst = Instance(fs)
        self.notes: list[str] = []
        self.decoders: dict[int, _Decoder] = {}
        self.reason_names: dict[int, str] = {}
        self.symbols: Kallsyms = Kallsyms.from_text("")
        self.page: PageLayout | None = None

    def start(self) -> None:
        for name in self.fs.remove_stale():
            self.notes.append(f"removed stale tracefs instance {name} (its process is gone)")
        events = EVENTS if self.device is None else EVENTS[:1]
        for system, event in events:
            self._learn(system, event)
        if self.device is None:
            self.symbols = load_symbols(self.notes)
        self.inst.create()
        self.inst.set_buffer_kb(BUFFER_KB)
        self.page = page_layout(self.fs, self.inst, self.notes)
        self.inst.open_readers()
        for system, event in events:
            flt = f"common_pid == {self.pid}"
            if self.device is not None:
                flt = f'name == "{self.device}"'
            self.inst.enable(system, event, flt)

    def _learn(self, system: str, event: str) -> None:
        path = self.fs.event_dir(system, event) / "format"
        try:
            fmt = parse_format(Path(path).read_text())
        except FileNotFoundError:
            raise FacilityError(
                f"tracepoint {system}:{event} is missing from this kernel"
            ) from None
        except (OSError, FormatError) as err:
            raise FacilityError(f"cannot read {path}: {err}") from None
        kind = {"netif_receive_skb": "rx", "kfree_skb": "drop", "consume_skb": "consume"}[event]
        fields = {n: (f.offset, f.size) for n, f in fmt.fields.items()}
        if "skbaddr" not in fields:
            raise FacilityError(f"{system}:{event} has no skbaddr field on this kernel")
        self.decoders[fmt.id] = _Decoder(kind, fields)
        if kind == "drop":
            self.reason_names = fmt.symbols.get("reason", {})
            if "reason" not in fields:
                self.notes.append("this kernel's kfree_skb records no drop reason (added in 5.17)")
        if kind == "consume" and "location" not in fields:
            self.notes.append(
                "this kernel's consume_skb records no location (added in 6.3): where a frame "
                "was consumed is not named"
            )

    def stop(self) -> None:
        self.inst.remove()

    def lost(self) -> int:
        return sum(self.inst.stats().values())

    def collect(self) -> list[Event]:
        """Every event in the ring now, in order per CPU (the lab's sender stays on one)."""
        if self.page is None:
            return []
        return self._decode(self.inst.read(self.page.page_size))

    def collect_by_cpu(self) -> dict[int, list[Event]]:
        """The events of each CPU's ring: on which CPU each was recorded."""
        if self.page is None:
            return {}
        out = {}
        for cpu, fd in self.inst.fds.items():
            pages = []
            while True:
                try:
                    data = os.read(fd, self.page.page_size)
                except BlockingIOError:
                    break
                except OSError as err:
                    if err.errno == errno.EINTR:
                        continue
                    raise
                if not data:
                    break
                pages.append(data)
                if len(data) < self.page.page_size:
                    break
            out[cpu] = self._decode(b"".join(pages))
        return out

    def _decode(self, raw: bytes) -> list[Event]:
        if not raw or self.page is None:
            return []
        out = np.empty((2, len(raw) // 8 + 1), dtype=np.int64)
        p = self.page
        n, _, _ = _ringbuf.walk(
            raw, p.page_size, p.commit_offset, p.commit_size, p.data_offset, out.data
        )
        events = []
        for off, length in zip(out[0, :n].tolist(), out[1, :n].tolist(), strict=True):
            ev = self._event(raw[off : off + length])
            if ev is not None:
                events.append(ev)
        return events

    def _event(self, rec: bytes) -> Event | None:
        if len(rec) < 8:
            return None
        dec = self.decoders.get(_uint(rec, 0, 2))
        if dec is None:
            return None
        f = dec.fields
        skb = _uint(rec, *f["skbaddr"])
        if dec.kind == "rx":
            loc = struct.unpack_from("<I", rec, f["name"][0])[0]
            start, size = loc & 0xFFFF, loc >> 16
            name = rec[start : start + size].split(b"\0", 1)[0].decode(errors="replace")
            return Event("rx", skb, device=name)
        location = _uint(rec, *f["location"]) if "location" in f else 0  # consume before 6.3
        if dec.kind == "consume":
            return Event("consume", skb, location=location)
        reason = _uint(rec, *f["reason"]) if "reason" in f else -1
        if self.reason_names.get(reason) in NOT_DROPS:
            return Event("consume", skb, location=location)
        return Event(
            "drop", skb, location=location, protocol=_uint(rec, *f["protocol"]), reason=reason
        )

    def function(self, address: int) -> str:
        loc = self.symbols.resolve(np.array([address], dtype=np.uint64))[0]
        return loc.function if loc is not None else f"0x{address:x}"

    def where(self, address: int) -> str:
        loc = self.symbols.resolve(np.array([address], dtype=np.uint64))[0]
        return loc.text if loc is not None else f"0x{address:x}"

    def reason_name(self, reason: int) -> str | None:
        if reason < 0:
            return None
        return self.reason_names.get(reason, str(reason))
