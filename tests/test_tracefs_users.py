"""Who uses a tracefs mount netsleuth made (sources/tracefs.py), without mounting anything:
the state folder is a temporary one and umount2 a stand-in that says what it was asked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netsleuth.checks import _trains  # noqa: F401 - see below
from netsleuth.sources import tracefs
from netsleuth.sources.tracefs import Tracefs

# A user is a live netsleuth process (tracefs.owner_alive): one named netsleuth or one that
# has loaded netsleuth's compiled helpers, as pytest has once _trains is imported.


class FakeLibc:
    def __init__(self) -> None:
        self.unmounted: list[bytes] = []

    def umount2(self, target: bytes, flags: int) -> int:
        self.unmounted.append(target)
        return 0


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(tracefs, "_libc", lambda: fake)
    return fake


def handle(top: Path, *, mounted: bool = True) -> Tracefs:
    """A handle registered as a user of netsleuth's mount, as Tracefs.open registers it:
    the one that mounted it, or one that shares it."""
    state = tracefs._ns_dir(top)
    state.mkdir(parents=True, exist_ok=True)
    (state / "tracefs.mounted").write_text("marker")
    return Tracefs(Path("/sys/kernel/tracing"), mounted, state)


def test_two_handles_of_one_process_unmount_at_the_last_close(
    tmp_path: Path, libc: FakeLibc
) -> None:
    first, second = handle(tmp_path), handle(tmp_path, mounted=False)
    assert first.user != second.user and first.user.startswith(f"{os.getpid()}.")
    second.close()
    assert libc.unmounted == [] and second.outcome is None
    first.close()
    assert libc.unmounted == [b"/sys/kernel/tracing"]
    assert first.outcome == "unmounted tracefs at /sys/kernel/tracing (netsleuth had mounted it)"
    assert list(tmp_path.iterdir()) == []  # the namespace's state folder went with it


def test_a_stray_file_does_not_keep_the_state_folder(tmp_path: Path, libc: FakeLibc) -> None:
    h = handle(tmp_path)
    assert h.state is not None
    (h.state / "users" / "notes.txt").write_text("someone's")
    h.close()
    assert libc.unmounted == [b"/sys/kernel/tracing"]
    assert list(tmp_path.iterdir()) == []


def test_a_forked_child_closing_its_copy_leaves_the_parent_registered(
    tmp_path: Path, libc: FakeLibc
) -> None:
    h = handle(tmp_path)
    assert h.state is not None
    mine = h.state / "users" / h.user
    pid = os.fork()
    if pid == 0:  # the child: close the inherited handle, then leave at once
        try:
            h.close()
        finally:
            os._exit(0 if not libc.unmounted else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # the child unmounted nothing
    assert mine.exists()
    h.close()
    assert libc.unmounted == [b"/sys/kernel/tracing"] and not mine.exists()
