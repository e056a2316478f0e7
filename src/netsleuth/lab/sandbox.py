"""Two network namespaces joined by a veth pair, made and removed through netlink (pyroute2).

    netsleuth-<pid>-a  (sender)              netsleuth-<pid>-b  (receiver)
      lab<pid>a  <---------- veth ---------->  lab<pid>b: the capture's destination addresses
      no addresses, IPv6 off: what comes        tunnel devices the capture needs (VXLAN, ...)
      back (ICMP errors, SYN-ACKs) stops here   default routes back to a, static neighbours

The host's interfaces, routes and sysctls are never touched: every setting is made inside
the two namespaces, which the kernel creates fresh (sysctls at their defaults). Device
names stay within IFNAMSIZ (15) and carry the pid, so the tracepoint events of two labs
running at once never mix. Namespaces left by a killed run are removed at the next start,
but only when their owner is gone: another lab (or test) may be running beside this one.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from netsleuth.cliutil import Terminated
from netsleuth.errors import FacilityError
from netsleuth.signals import SIGNALS, ending_signals

NETNS_DIR = Path("/run/netns")
NS_PREFIX = "netsleuth-"
_NS_NAME = re.compile(rf"{NS_PREFIX}(\d+)-[ab]")
# Replies from the receiver go to this gateway (a link-local address nobody owns), resolved
# by a permanent neighbour entry to the sender's MAC: no ARP/ND exchange ever starts.
GATEWAY4 = "169.254.0.1"
GATEWAY6 = "fe80::1"
MAX_ADDRESSES = 4096  # per replay: netlink calls at start grow with them
# A CPU mask as the kernel parses it (bitmap_parse, lib/bitmap-str.c): comma-separated
# groups of at most 8 hex digits (32 bits), most significant first. A longer group, or
# more groups than nr_cpu_ids needs, is refused with EOVERFLOW: one long hex string fails
# on every host with more than 32 CPUs.
MASK = re.compile(r"[0-9a-fA-F]{1,8}(?:,[0-9a-fA-F]{1,8})*")


def rps_mask(cpus: list[int]) -> str:
    """CPUs -> a mask as the kernel prints cpumasks: 32-bit groups, 8 digits each."""
    if not cpus or min(cpus) < 0:
        raise ValueError(f"no CPU mask for {cpus!r}")
    bits = sum(1 << c for c in set(cpus))
    groups = max(cpus) // 32 + 1
    return ",".join(f"{(bits >> (32 * g)) & 0xFFFFFFFF:08x}" for g in reversed(range(groups)))


class Interrupted(KeyboardInterrupt):
    """SIGINT arrived: unwinds through every `finally`, so all is removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """For the whole block SIGINT raises Interrupted, SIGTERM and SIGHUP Terminated (as
    cliutil's handlers do: the exit code names the signal); installed before anything is
    created so that no signal can arrive between a creation and its `try`.

    pyroute2 forks helper children (to open sockets in a namespace) that inherit the
    handler: in them the signal keeps its default action, so a child never unwinds this
    process's stack (and never removes the namespaces it is building)."""
    owner = os.getpid()

    def _raise(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if signum == signal.SIGINT:
            raise Interrupted(signum)
        raise Terminated(signum)

    old = {s: signal.signal(s, _raise) for s in ending_signals()}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Teardown runs to its end: a signal arriving meanwhile is delivered afterwards."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class TornDownWhole(contextlib.AbstractContextManager[Any]):
    """Enter `cm` as usual; its exit (a teardown: unmount, remove) runs with SIGINT, SIGTERM
    and SIGHUP blocked, as Sandbox.close does, so a second signal cannot cut it short."""

    def __init__(self, cm: contextlib.AbstractContextManager[Any]) -> None:
        self.cm = cm

    def __enter__(self) -> Any:
        return self.cm.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        with signals_blocked():
            return self.cm.__exit__(exc_type, exc, tb)


def is_netsleuth_process(pid: int, proc: Path = Path("/proc")) -> bool:
    """The process exists and is netsleuth (command line, or a netsleuth module mapped: a
    test runner running the lab in-process counts as an owner too)."""
    base = proc / str(pid)
    try:
        if b"netsleuth" in (base / "cmdline").read_bytes():
            return True
        return "netsleuth" in (base / "maps").read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True  # exists but unreadable: assume alive, never remove a live lab


def stale_namespaces(names: list[str], proc: Path = Path("/proc")) -> list[str]:
    """The netsleuth-<pid>-a/b names among `names` whose owner is no longer running."""
    out = []
    for name in names:
        m = _NS_NAME.fullmatch(name)
        if m and int(m.group(1)) != os.getpid() and not is_netsleuth_process(int(m.group(1)), proc):
            out.append(name)
    return out


def remove_stale(netns_dir: Path = NETNS_DIR) -> list[str]:
    from pyroute2 import netns

    try:
        names = sorted(p.name for p in netns_dir.iterdir())
    except OSError:
        return []
    removed = []
    for name in stale_namespaces(names):
        with contextlib.suppress(OSError):
            netns.remove(name)
            removed.append(name)
    return removed


def require_netns() -> None:
    """Exit 3 with what to do when this process cannot make namespaces."""
    if os.geteuid() != 0:
        raise FacilityError(
            "lab needs root (CAP_SYS_ADMIN for network namespaces and tracefs, CAP_NET_RAW "
            "for AF_PACKET): run it with sudo"
        )
    if not Path("/proc/self/ns/net").exists():
        raise FacilityError(
            "this kernel has no network namespaces (CONFIG_NET_NS): lab cannot run here"
        )


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """This thread in namespace `name` for the block (sockets and /proc files opened there
    stay bound to it afterwards)."""
    from pyroute2 import netns

    netns.pushns(name)
    try:
        yield
    finally:
        netns.popns()


def _sysctl(name: str, value: str) -> None:
    """Write a sysctl of the namespace this thread is in (/proc/sys/net is per namespace)."""
    path = Path("/proc/sys") / name.replace(".", "/")
    with contextlib.suppress(FileNotFoundError):
        path.write_text(value)


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _netlink_error(err: Exception) -> str:
    code = getattr(err, "code", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    return str(err)


@dataclass
class Tunnel:
    kind: str  # vxlan, gretap, gre, ipip, sit, geneve
    name: str
    created: bool
    note: str = ""


@dataclass
class Sandbox:
    mtu: int = 1500
    rps_cpus: str | None = None
    pid: int = field(default_factory=os.getpid)
    notes: list[str] = field(default_factory=list)
    tunnels: list[Tunnel] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list)
    idx_a: int = 0
    idx_b: int = 0
    mac_a: bytes = b""
    mac_b: bytes = b""

    @property
    def ns_a(self) -> str:
        return f"{NS_PREFIX}{self.pid}-a"

    @property
    def ns_b(self) -> str:
        return f"{NS_PREFIX}{self.pid}-b"

    @property
    def if_a(self) -> str:
        return f"lab{self.pid}a"

    @property
    def if_b(self) -> str:
        return f"lab{self.pid}b"

    def device_name(self, suffix: str) -> str:
        """lab<pid><suffix>: a pid has at most 7 digits (PID_MAX_LIMIT is 4194304,
        include/linux/threads.h), so a suffix of up to 5 characters always fits
        IFNAMSIZ-1 (15); the lab's are x0-x15, v1-v4094, gr, ip, si, ge."""
        name = f"lab{self.pid}{suffix}"
        if len(name) > 15:
            raise ValueError(f"device name {name} is longer than IFNAMSIZ-1 (15)")
        return name

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        from pyroute2 import netns

        require_netns()
        for name in remove_stale():
            self.notes.append(f"removed stale namespace {name} (its process is gone)")
        for name in (self.ns_a, self.ns_b):
            # Recorded before the call: a signal during create still gets it removed.
            self.created.append(name)
            try:
                netns.create(name)
            except OSError as err:
                raise FacilityError(f"cannot create network namespace {name}: {err}") from None
        with inside(self.ns_a):
            # The sender only sends: no IPv6 means no router solicitation, DAD or MLD report
            # wandering into the receiver while frames are replayed.
            _sysctl("net.ipv6.conf.all.disable_ipv6", "1")
            _sysctl("net.ipv6.conf.default.disable_ipv6", "1")
        with inside(self.ns_b):
            # No link-local address and no DAD on the receiver's devices (addr_gen_mode 1 =
            # none, Documentation/networking/ip-sysctl.rst): addresses are ours alone.
            _sysctl("net.ipv6.conf.default.addr_gen_mode", "1")
            _sysctl("net.ipv6.conf.default.accept_dad", "0")
            _sysctl("net.ipv6.conf.default.accept_ra", "0")
        self._make_veth()

    def _make_veth(self) -> None:
        from pyroute2 import NetNS

        with NetNS(self.ns_a) as nsa:
            nsa.link(
                "add",
                ifname=self.if_a,
                kind="veth",
                mtu=self.mtu,
                peer={"ifname": self.if_b, "net_ns_fd": self.ns_b, "mtu": self.mtu},
            )
            self.idx_a = nsa.link_lookup(ifname=self.if_a)[0]
            nsa.link("set", index=self.idx_a, state="up")
            self.mac_a = _mac(nsa.get_links(self.idx_a)[0].get_attr("IFLA_ADDRESS"))
        with NetNS(self.ns_b) as nsb:
            self.idx_b = nsb.link_lookup(ifname=self.if_b)[0]
            nsb.link("set", index=self.idx_b, state="up")
            nsb.link("set", index=nsb.link_lookup(ifname="lo")[0], state="up")
            self.mac_b = _mac(nsb.get_links(self.idx_b)[0].get_attr("IFLA_ADDRESS"))
            mac_a = self.mac_a.hex(":")
            nsb.route("add", dst="0.0.0.0/0", gateway=GATEWAY4, oif=self.idx_b, flags=4)  # onlink
            nsb.neigh("add", dst=GATEWAY4, lladdr=mac_a, ifindex=self.idx_b, state=0x80)
            with contextlib.suppress(Exception):  # IPv6 may be absent: then no IPv6 route
                nsb.route("add", dst="::/0", gateway=GATEWAY6, oif=self.idx_b, family=10, flags=4)
                nsb.neigh("add", dst=GATEWAY6, lladdr=mac_a, ifindex=self.idx_b, state=0x80)
        if self.rps_cpus is not None:
            self._write_rps(self.rps_cpus)

    def _write_rps(self, mask: str) -> None:
        """rps_cpus of the receiver's queue. The file is in the namespace's own sysfs, which
        this process does not have mounted: `ip netns exec` mounts it in a private mount
        namespace of its own, so nothing is mounted on the host even for a moment."""
        import subprocess

        if not MASK.fullmatch(mask):
            raise ValueError(f"rps_cpus mask {mask!r} is not hexadecimal in 32-bit groups")
        path = f"/sys/class/net/{self.if_b}/queues/rx-0/rps_cpus"
        try:
            res = subprocess.run(
                ["ip", "netns", "exec", self.ns_b, "sh", "-c", f"echo {mask} > {path}"],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
            )
        except FileNotFoundError:
            raise FacilityError("lab needs the ip command (iproute2) to set rps_cpus") from None
        except (OSError, subprocess.SubprocessError) as err:
            raise FacilityError(f"cannot set rps_cpus on {self.if_b}: {err}") from None
        if res.returncode != 0:
            why = " ".join(res.stderr.split()) or f"exit status {res.returncode}"
            raise FacilityError(f"cannot set rps_cpus {mask} on {self.if_b}: {why}")

    def close(self) -> None:
        from pyroute2 import netns

        with signals_blocked():
            for h in self._handles:
                with contextlib.suppress(Exception):
                    h.close()
            self._handles.clear()
            for name in self.created:
                with contextlib.suppress(OSError):
                    netns.remove(name)
            self.created.clear()

    def keep(self, handle: Any) -> Any:
        """Close `handle` (a socket, a file) when the sandbox closes."""
        self._handles.append(handle)
        return handle

    # --- configuration -----------------------------------------------------------------

    def add_addresses(self, ifname: str, addresses: list[str]) -> int:
        """Assign host addresses (/32, /128) to a receiver device; returns how many."""
        from pyroute2 import NetNS

        n = 0
        with NetNS(self.ns_b) as nsb:
            idx = nsb.link_lookup(ifname=ifname)[0]
            for text in addresses[:MAX_ADDRESSES]:
                ip = ipaddress.ip_address(text)
                try:
                    if ip.version == 4:
                        nsb.addr("add", index=idx, address=text, prefixlen=32)
                    else:
                        # IFA_F_NODAD (0x02): usable at once, no duplicate detection
                        nsb.addr("add", index=idx, address=text, prefixlen=128, flags=0x02)
                    n += 1
                except Exception as err:
                    if getattr(err, "code", None) != errno.EEXIST:
                        self.notes.append(f"address {text}: {_netlink_error(err)}")
        if len(addresses) > MAX_ADDRESSES:
            self.notes.append(
                f"{len(addresses)} destination addresses: only the first {MAX_ADDRESSES} "
                "were assigned (frames to the others are not addressed to the receiver)"
            )
        return n

    def add_tunnel(self, kind: str, suffix: str, **attrs: Any) -> Tunnel:
        """Create a tunnel device in the receiver; a kind this kernel lacks is a note."""
        from pyroute2 import NetNS

        try:
            name = self.device_name(suffix)
        except ValueError as err:  # a note, as for a device kind the kernel lacks
            t = Tunnel(kind, f"lab{self.pid}{suffix}", False, f"no {kind} device: {err}")
            self.tunnels.append(t)
            return t
        with NetNS(self.ns_b) as nsb:
            try:
                nsb.link("add", ifname=name, kind=kind, **attrs)
            except Exception as err:
                code = getattr(err, "code", None)
                why = (
                    "this kernel has no such device type (module absent: check /proc/config.gz)"
                    if code in (errno.EOPNOTSUPP, errno.ENOENT, errno.EINVAL)
                    else _netlink_error(err)
                )
                t = Tunnel(kind, name, False, f"no {kind} device: {why}")
                self.tunnels.append(t)
                return t
            idx = nsb.link_lookup(ifname=name)[0]
            nsb.link("set", index=idx, state="up")
        t = Tunnel(kind, name, True)
        self.tunnels.append(t)
        return t

    def listen(self, proto: str, port: int) -> None:
        """A socket bound to `port` on every address of the receiver (TCP: listening)."""
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        with inside(self.ns_b):
            for family, any_addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
                s = self.keep(socket.socket(family, kind))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((any_addr, port))
                if kind == socket.SOCK_STREAM:
                    s.listen(128)

    def sender_socket(self) -> socket.socket:
        """AF_PACKET socket on the sender's end, protocol 0: it sends and receives nothing."""
        with inside(self.ns_a):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self.keep(s)
            s.bind((self.if_a, 0))
        return s
