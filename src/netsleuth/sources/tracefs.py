"""tracefs: find or mount it, run one event in a private instance, read its binary pages.

Lifecycle (probe -> start -> read -> stop):
  Tracefs.open()      find tracefs in /proc/mounts (or debugfs/tracing); mount it at
                      /sys/kernel/tracing when absent and permitted. Runs using a mount
                      netsleuth made register under /run/netsleuth (a flock'd directory):
                      the last one to close unmounts it, and if the kernel still says EBUSY
                      it is left mounted and the run says so (outcome)
  Instance.create()   mkdir instances/netsleuth-<pid>: a ring buffer of our own, so the
                      global buffer, tracer and events stay exactly as the user left them
                      (Documentation/trace/ftrace.rst, "Instances")
  Instance.enable()   events/<system>/<event>/enable (and filter) in the instance only
  Instance.read()     per_cpu/cpuN/trace_pipe_raw, non-blocking, whole pages
  Instance.lost()     per_cpu/cpuN/stats: overrun + commit overrun + dropped events
  Instance.remove()   disable, close, rmdir; always called (context manager)

Instances named netsleuth-<pid> whose owner is gone (a SIGKILLed run) are removed first; the
owner is checked, not just the pid: a live process that is not netsleuth, or that started
after the instance was made, is another process that reused the pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import itertools
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from netsleuth.errors import FacilityError
from netsleuth.signals import SIGNALS

DEFAULT_MOUNT = Path("/sys/kernel/tracing")
# Who uses a tracefs mount that netsleuth made: on tmpfs, so a reboot (which also unmounts)
# clears it.
STATE_DIR = Path("/run/netsleuth")
PREFIX = "netsleuth-"
_STATS = re.compile(r"^(overrun|commit overrun|dropped events):\s*(\d+)", re.M)


def _mounts(proc: Path) -> list[tuple[str, str]]:
    try:
        text = (proc / "mounts").read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append((parts[1].replace("\\040", " "), parts[2]))
    return out


def find_tracefs(proc: Path = Path("/proc")) -> Path | None:
    for mountpoint, fstype in _mounts(proc):
        if fstype == "tracefs" and not mountpoint.endswith("/debug/tracing"):
            return Path(mountpoint)
    for mountpoint, fstype in _mounts(proc):
        if fstype == "tracefs":
            return Path(mountpoint)
        if fstype == "debugfs" and (Path(mountpoint) / "tracing" / "events").is_dir():
            return Path(mountpoint) / "tracing"
    return None


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Tracefs:
    def __init__(self, root: Path, mounted_by_us: bool, state: Path | None = None) -> None:
        self.root = root
        self.mounted_by_us = mounted_by_us
        # While this handle is registered as a user of our mount: the state directory, and
        # the handle's own file under its users/.
        self.state = state
        self.user = _register(state) if state is not None else ""
        self.pid = os.getpid()  # a forked child's copy of the handle is not a user
        self.outcome: str | None = None  # what close() did to the mount, for the notes

    @classmethod
    def open(cls, *, mount: bool = True, state_dir: Path = STATE_DIR) -> Tracefs:
        found = find_tracefs()
        if found is not None and not _marker(state_dir, found):
            return cls(found, False)  # the user's own mount: never ours to touch
        if found is None:
            _can_mount(mount)
        with _locked(state_dir) as ns:
            found = find_tracefs()
            if found is None:
                rc = _libc().mount(b"nodev", str(DEFAULT_MOUNT).encode(), b"tracefs", 0, None)
                if rc != 0:
                    err = ctypes.get_errno()
                    raise FacilityError(
                        f"cannot mount tracefs at {DEFAULT_MOUNT}: {os.strerror(err)}"
                    )
                ns.mkdir(exist_ok=True, mode=0o700)
                (ns / "tracefs.mounted").write_text(_identity(DEFAULT_MOUNT))
                found, mounted = DEFAULT_MOUNT, True
            elif _marker(state_dir, found):
                mounted = False  # another netsleuth run mounted it: share it
            else:
                return cls(found, False)
            return cls(found, mounted, ns)

    def close(self) -> None:
        state, self.state = self.state, None
        if state is None or os.getpid() != self.pid:
            return  # a forked child leaves its parent's registration and mount alone
        with _locked(state.parent):
            with contextlib.suppress(FileNotFoundError):
                (state / "users" / self.user).unlink()
            if _users(state):
                if self.mounted_by_us:
                    self.outcome = (
                        f"left tracefs mounted at {self.root}: another netsleuth run uses it"
                    )
                return
            if _libc().umount2(str(self.root).encode(), 0) != 0:
                err = ctypes.get_errno()
                self.outcome = (
                    f"left tracefs mounted at {self.root} ({os.strerror(err)}); "
                    f"umount {self.root} to remove it"
                )
                return
            # Under the lock: nobody is between reading and using it. Whatever is left in
            # users/ is no live user's (a stray file, a dead run's): each goes on its own.
            for leftover in (
                *_entries(state / "users"),
                state / "users",
                state / "tracefs.mounted",
            ):
                with contextlib.suppress(OSError):
                    leftover.rmdir() if leftover.is_dir() else leftover.unlink()
            with contextlib.suppress(OSError):
                state.rmdir()
            self.outcome = f"unmounted tracefs at {self.root} (netsleuth had mounted it)"

    def event_dir(self, system: str, event: str) -> Path:
        return self.root / "events" / system / event

    def remove_stale(self) -> list[str]:
        """Remove netsleuth-<pid> instances whose owner no longer runs."""
        removed = []
        instances = self.root / "instances"
        with contextlib.suppress(OSError):
            for entry in instances.iterdir():
                m = re.fullmatch(rf"{PREFIX}(\d+)", entry.name)
                if not m or owner_alive(int(m.group(1)), entry.stat().st_mtime):
                    continue
                with contextlib.suppress(OSError):
                    entry.rmdir()
                    removed.append(entry.name)
        return removed


def _can_mount(mount: bool) -> None:
    try:
        supported = "tracefs" in Path("/proc/filesystems").read_text()
    except OSError:
        supported = False
    if not supported:
        raise FacilityError(
            "this kernel has no tracefs (built without CONFIG_TRACING / "
            "CONFIG_FTRACE): drops needs the skb:kfree_skb tracepoint"
        )
    if not mount:
        raise FacilityError(f"tracefs is not mounted: mount -t tracefs nodev {DEFAULT_MOUNT}")
    if os.geteuid() != 0:
        raise FacilityError(
            f"tracefs is not mounted and mounting it needs root: run as root, or "
            f"mount -t tracefs nodev {DEFAULT_MOUNT}"
        )


def _marker(top: Path, root: Path) -> bool:
    """Whether the tracefs at root is the very mount netsleuth made: same mount namespace,
    same mount id (another namespace's tracefs, or one the user mounted since, is not)."""
    try:
        return (_ns_dir(top) / "tracefs.mounted").read_text() == _identity(root)
    except OSError:
        return False


def _identity(root: Path) -> str:
    """'<mount namespace> <mount id> <mount point>' of the tracefs at root
    (/proc/self/mountinfo: the mount id is field 1, the mount point field 5)."""
    ns = os.readlink("/proc/self/ns/mnt")
    mount_id = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            f = line.split()
            if len(f) > 4 and f[4] == str(root) and " - tracefs " in line:
                mount_id = f[0]
    return f"{ns} {mount_id} {root}"


def _ns_dir(top: Path) -> Path:
    """Mounts are per mount namespace: so is the record of who uses ours."""
    return top / os.readlink("/proc/self/ns/mnt").replace(":", "-").replace("[", "").rstrip("]")


@contextlib.contextmanager
def _locked(top: Path) -> Iterator[Path]:
    """One run at a time decides to mount or unmount: flock on the top directory itself
    (released if we die; never removed, so never two locks), yielding this namespace's
    state directory, which the last user removes."""
    try:
        top.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise FacilityError(f"cannot use {top} to share the tracefs mount: {err}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield _ns_dir(top)
    finally:
        os.close(fd)


_HANDLES = itertools.count()


def _entries(folder: Path) -> list[Path]:
    """What a folder holds; nothing when it is gone (removed by a run of another version,
    or by hand)."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _register(state: Path) -> str:
    """One file per open handle, '<pid>.<n>': a process may hold two (a test's own and the
    run it starts, or the lab's tracer and a drops run) and the first to close must not
    unmount tracefs under the other. It holds the process's start time, which tells it
    from a later process given the same pid."""
    name = f"{os.getpid()}.{next(_HANDLES)}"
    (state / "users").mkdir(parents=True, exist_ok=True, mode=0o700)
    (state / "users" / name).write_text(str(start_ticks(os.getpid())))
    return name


def _users(state: Path) -> list[int]:
    """Pids of the live users of our mount; the files of dead ones are removed. No users
    folder (removed by a run of another version, or by hand) is no users."""
    live = []
    for entry in _entries(state / "users"):
        pid_text = entry.name.partition(".")[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if _user_alive(entry, pid):
            live.append(pid)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    return live


def _user_alive(entry: Path, pid: int) -> bool:
    """Whether the process that registered `entry` still runs: the same pid with the start
    time the file holds. A library caller that loaded none of netsleuth's compiled helpers
    is one too (owner_alive would not know it: a test's own handle, run on its own, lost
    the mount under it when the run it started ended). A file an earlier version wrote
    holds nothing: owner_alive judges it."""
    try:
        text = entry.read_text().strip()
    except OSError:
        return False
    if not text.isdigit():
        return owner_alive(pid, entry.stat().st_mtime)
    return start_ticks(pid) == int(text)


def start_ticks(pid: int, proc: Path = Path("/proc")) -> int | None:
    """When pid started, in clock ticks after boot (field 22 of /proc/PID/stat, proc(5);
    the fields after comm's ")" start at field 3); None when it does not run."""
    try:
        return int((proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def owner_alive(pid: int, since: float, proc: Path = Path("/proc")) -> bool:
    """Whether pid is still the netsleuth process that made something at time `since`: a
    pid reused by another program, or by a process started later, is not."""
    try:
        # A netsleuth run is `netsleuth ...` or any Python that loaded our C extensions
        # (pytest, python -m netsleuth): the path of the .so is in its maps.
        cmdline = (proc / str(pid) / "cmdline").read_bytes()
        if b"netsleuth" not in cmdline:
            cmdline = (proc / str(pid) / "maps").read_bytes()
        ticks = start_ticks(pid, proc)
        btime = next(
            int(ln.split()[1])
            for ln in (proc / "stat").read_text().splitlines()
            if ln.startswith("btime ")
        )
    except (OSError, IndexError, ValueError, StopIteration):
        return False
    if b"netsleuth" not in cmdline or ticks is None:
        return False  # the pid now belongs to another program, or to none
    started = btime + ticks / os.sysconf("SC_CLK_TCK")
    return started <= since + 2.0  # tick and btime rounding


def _write(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


class Instance:
    """A private tracefs instance; use as a context manager so it is always removed."""

    def __init__(self, fs: Tracefs, name: str | None = None) -> None:
        self.fs = fs
        self.name = name or f"{PREFIX}{os.getpid()}"
        self.path = fs.root / "instances" / self.name
        self.enabled: list[Path] = []
        self.fds: dict[int, int] = {}
        self.created = False

    def __enter__(self) -> Instance:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def create(self) -> None:
        try:
            self.path.mkdir()
        except FileExistsError:
            raise FacilityError(f"tracefs instance {self.path} already exists") from None
        except PermissionError:
            raise FacilityError(
                "creating a tracefs instance needs root (CAP_SYS_ADMIN): run with sudo"
            ) from None
        except OSError as err:
            raise FacilityError(f"cannot create tracefs instance {self.path}: {err}") from None
        self.created = True

    def set_buffer_kb(self, kb: int) -> None:
        """Per-CPU ring size. Non-overwrite mode: when full, new events are dropped and
        counted in stats ("dropped events") rather than old ones silently overwritten."""
        _write(self.path / "buffer_size_kb", str(kb))
        with contextlib.suppress(OSError):
            _write(self.path / "options" / "overwrite", "0")

    def page_size(self) -> int | None:
        """buffer_subbuf_size_kb (6.8+) when present: pages read are that size."""
        try:
            return int((self.path / "buffer_subbuf_size_kb").read_text().split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            return None

    def enable(self, system: str, event: str, event_filter: str | None = None) -> None:
        d = self.path / "events" / system / event
        if not d.is_dir():
            raise FacilityError(f"tracepoint {system}:{event} is missing from this kernel")
        if event_filter:
            try:
                _write(d / "filter", event_filter)
            except OSError as err:
                raise ValueError(f"the kernel refused filter {event_filter!r}: {err}") from None
        _write(d / "enable", "1")
        self.enabled.append(d)

    def cpus(self) -> list[int]:
        out = []
        for entry in (self.path / "per_cpu").iterdir():
            m = re.fullmatch(r"cpu(\d+)", entry.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def open_readers(self) -> None:
        for cpu in self.cpus():
            path = self.path / "per_cpu" / f"cpu{cpu}" / "trace_pipe_raw"
            self.fds[cpu] = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    def read(self, page_size: int, max_pages: int = 4096) -> bytes:
        """Every whole page the kernel has ready, across CPUs (at most max_pages a call)."""
        chunks: list[bytes] = []
        for fd in self.fds.values():
            for _ in range(max_pages):
                try:
                    data = os.read(fd, page_size)
                except BlockingIOError:
                    break
                except OSError as err:
                    if err.errno == errno.EINTR:
                        continue
                    raise
                if len(data) < page_size:
                    break
                chunks.append(data)
        return b"".join(chunks)

    def stats(self) -> dict[int, int]:
        """Events lost per CPU so far (counters since the instance was created)."""
        out = {}
        for cpu in self.cpus():
            try:
                text = (self.path / "per_cpu" / f"cpu{cpu}" / "stats").read_text()
            except OSError:
                continue
            out[cpu] = sum(int(v) for _, v in _STATS.findall(text))
        return out

    def remove_events(self) -> None:
        """Stop tracing; pages already in the ring can still be read."""
        for d in self.enabled:
            with contextlib.suppress(OSError):
                _write(d / "enable", "0")
        self.enabled.clear()

    def remove(self) -> None:
        self.remove_events()
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        if self.created:
            self.created = False
            with contextlib.suppress(FileNotFoundError):
                self.path.rmdir()


@contextlib.contextmanager
def tracefs_session(*, mount: bool = True) -> Iterator[Tracefs]:
    """The signals that end a run (SIGINT, SIGTERM, SIGHUP) are held from before the mount
    until the session's `finally` guards it: a signal in between left the mount behind (5
    of 20 timed tries). A signal that came meanwhile is delivered as the session starts,
    and unwinds through close()."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        fs = Tracefs.open(mount=mount)
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            yield fs
        finally:
            fs.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
