"""Who uses a tracefs mount netsleuth made (sources/tracefs.py), without mounting anything:
the state folder is a temporary one and umount2 a stand-in that says what it was asked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netsleuth.sources import tracefs
from netsleuth.sources.tracefs import Tracefs

# A user is a live process that registered a handle: the same pid with the start time its
# file holds (tracefs._user_alive), whatever it has loaded.


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


def test_a_user_that_loaded_no_compiled_helper_keeps_the_mount(
    tmp_path: Path, libc: FakeLibc
) -> None:
    """A process that registered a handle and loaded none of netsleuth's compiled helpers,
    nor has netsleuth in its command line (a test's tracefs fixture, the test file run on
    its own), is a user while it runs: the run it started unmounted tracefs under it when
    it ended (helper-43), since owner_alive looks for those."""
    script = tmp_path / "user.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from netsleuth.sources import tracefs\n"
        f"state = tracefs._ns_dir(Path({str(tmp_path / 'top')!r}))\n"
        "tracefs.Tracefs(Path('/sys/kernel/tracing'), False, state)\n"
        "maps = Path('/proc/self/maps').read_text()\n"
        "print('compiled' if 'netsleuth' in maps else 'registered', flush=True)\n"
        "sys.stdin.read()\n"
    )
    mine = handle(tmp_path / "top")
    with subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as user:
        assert user.stdout is not None and user.stdout.readline() == "registered\n"
        mine.close()
        assert libc.unmounted == []
        assert (
            mine.outcome
            == "left tracefs mounted at /sys/kernel/tracing: another netsleuth run uses it"
        )
        user.communicate("")
    assert user.returncode == 0


def test_a_pid_that_started_at_another_time_is_no_user(tmp_path: Path, libc: FakeLibc) -> None:
    """A user file whose pid runs, but started at another time than the file says (the pid
    was given to a later process), is no user: the last handle's close unmounts."""
    h = handle(tmp_path)
    assert h.state is not None
    ticks = tracefs.start_ticks(os.getpid())
    assert ticks is not None
    (h.state / "users" / f"{os.getpid()}.999").write_text(str(ticks + 1))
    h.close()
    assert libc.unmounted == [b"/sys/kernel/tracing"]
