"""tracefs: find or mount it, run one event in a private instance, read its binary pages.

Lifecycle (probe -> start -> read -> stop):
  Tracefs.open()      find tracefs in /proc/mounts (or debugfs/tracing); mount it at
                      /sys/kernel/tracing when absent and permitted, and unmount it at close
  Instance.create()   mkdir instances/netsleuth-<pid>: a ring buffer of our own, so the
                      global buffer, tracer and events stay exactly as the user left them
                      (Documentation/trace/ftrace.rst, "Instances")
  Instance.enable()   events/<system>/<event>/enable (and filter) in the instance only
  Instance.read()     per_cpu/cpuN/trace_pipe_raw, non-blocking, whole pages
  Instance.lost()     per_cpu/cpuN/stats: overrun + commit overrun + dropped events
  Instance.remove()   disable, close, rmdir; always called (context manager)

Instances named netsleuth-<pid> whose process is gone (a SIGKILLed run) are removed first.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from netsleuth.errors import FacilityError

DEFAULT_MOUNT = Path("/sys/kernel/tracing")
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
    def __init__(self, root: Path, mounted_by_us: bool) -> None:
        self.root = root
        self.mounted_by_us = mounted_by_us

    @classmethod
    def open(cls, *, mount: bool = True) -> Tracefs:
        found = find_tracefs()
        if found is not None:
            return cls(found, False)
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
        rc = _libc().mount(b"nodev", str(DEFAULT_MOUNT).encode(), b"tracefs", 0, None)
        if rc != 0:
            err = ctypes.get_errno()
            raise FacilityError(f"cannot mount tracefs at {DEFAULT_MOUNT}: {os.strerror(err)}")
        return cls(DEFAULT_MOUNT, True)

    def close(self) -> None:
        if self.mounted_by_us:
            self.mounted_by_us = False
            _libc().umount2(str(self.root).encode(), 0)

    def event_dir(self, system: str, event: str) -> Path:
        return self.root / "events" / system / event

    def remove_stale(self) -> list[str]:
        """Remove netsleuth-<pid> instances whose process no longer exists."""
        removed = []
        instances = self.root / "instances"
        with contextlib.suppress(OSError):
            for entry in instances.iterdir():
                m = re.fullmatch(rf"{PREFIX}(\d+)", entry.name)
                if not m or _alive(int(m.group(1))):
                    continue
                with contextlib.suppress(OSError):
                    entry.rmdir()
                    removed.append(entry.name)
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    fs = Tracefs.open(mount=mount)
    try:
        yield fs
    finally:
        fs.close()
