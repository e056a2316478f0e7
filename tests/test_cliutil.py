"""The command guard: a signal's exception that Python wrapped in another error (a SystemError
from a handler raising while os.fspath calls back into Python; a RuntimeError from one raising
inside a class body's __set_name__; an ImportError from NumPy's import cut short) still ends
the run as that signal, in a command and during start-up."""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable
from typing import Any

import pytest

from netsleuth import cli, cliutil
from netsleuth.cliutil import Terminated, run_guarded

# Each signal's exception, the exit code and the line it must end a run with.
SIGNALS = pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (Terminated(), 143, "terminated"),
        (Terminated(signal.SIGHUP), 129, "hung up"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)


def wrapped(signal_exc: BaseException) -> int:
    try:
        raise signal_exc
    except BaseException as err:
        raise SystemError(
            "<built-in function fspath> returned a result with an exception set"
        ) from err


@SIGNALS
def test_a_signal_inside_c_code_ends_like_the_signal(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(wrapped, (exc,), {}) == code
    assert capsys.readouterr().err == f"netsleuth: {line}\n"


def test_any_other_system_error_is_a_bug_and_raises() -> None:
    with pytest.raises(SystemError):
        run_guarded(wrapped, (ValueError("x"),), {})


def in_set_name(signal_exc: BaseException) -> int:
    """A class body whose descriptor's __set_name__ is where the signal's handler raised
    (functools.cached_property in platform.uname_result, at start-up)."""

    class Descriptor:
        def __set_name__(self, owner: type, name: str) -> None:
            raise signal_exc

    type("Built", (), {"field": Descriptor()})
    return 0


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12 adds a note instead of wrapping")
def test_python_wraps_what_set_name_raises() -> None:
    with pytest.raises(RuntimeError) as caught:
        in_set_name(Terminated())
    assert isinstance(caught.value.__cause__, Terminated)


@SIGNALS
def test_a_signal_inside_set_name_ends_like_the_signal(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(in_set_name, (exc,), {}) == code
    assert capsys.readouterr().err == f"netsleuth: {line}\n"


@SIGNALS
def test_a_wrapped_signal_while_starting_ends_like_the_signal(
    exc: BaseException,
    code: int,
    line: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # entry() imports the command line after installing its handlers; a signal during
    # those imports (seen: SIGTERM at 0.0 s, in platform's class bodies) reaches it wrapped.
    assert starting(in_set_name, exc, monkeypatch) == code
    assert capsys.readouterr().err == f"netsleuth: {line}\n"


def starting(fn: Callable[[BaseException], int], exc: BaseException, mp: pytest.MonkeyPatch) -> Any:
    """entry()'s exit code when the command line's import runs fn(exc)."""
    mp.setattr(cli, "main", lambda: fn(exc))
    mp.setattr(cliutil, "install_signals", lambda: None)
    with pytest.raises(SystemExit) as done:
        cliutil.entry()
    return done.value.code


def test_any_other_runtime_error_while_starting_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "main", lambda: in_set_name(ValueError("x")))
    monkeypatch.setattr(cliutil, "install_signals", lambda: None)
    with pytest.raises(RuntimeError):
        cliutil.entry()


def too_deep() -> int:
    raise RecursionError("maximum recursion depth exceeded")


def test_a_recursion_error_is_still_the_nesting_line(capsys: pytest.CaptureFixture[str]) -> None:
    # RecursionError is a RuntimeError: the wrapped-signal clause must not take it first.
    assert run_guarded(too_deep, (), {}) == 2
    assert capsys.readouterr().err == "netsleuth: the input is nested too deeply to read\n"


def out_of_memory() -> int:
    raise MemoryError


def test_out_of_memory_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_guarded(out_of_memory, (), {}) == 3
    assert capsys.readouterr().err == (
        "netsleuth: out of memory: give the process more (ulimit -v, the cgroup) "
        "or try --workers 1\n"
    )


def import_cut(signal_exc: BaseException) -> int:
    """An import the signal's handler raised in, which the imported package turned into
    ImportError (NumPy: "numpy._core.multiarray failed to import")."""
    try:
        raise signal_exc
    except BaseException:
        raise ImportError("numpy._core.multiarray failed to import")  # noqa: B904 (as NumPy)


@SIGNALS
def test_a_signal_inside_an_import_ends_like_the_signal(
    exc: BaseException,
    code: int,
    line: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run_guarded(import_cut, (exc,), {}) == code
    assert capsys.readouterr().err == f"netsleuth: {line}\n"
    assert starting(import_cut, exc, monkeypatch) == code
    assert capsys.readouterr().err == f"netsleuth: {line}\n"


def test_any_other_import_error_raises() -> None:
    with pytest.raises(ImportError):
        run_guarded(import_cut, (ValueError("x"),), {})


def hung_up_terminal_in_cleanup(signal_exc: BaseException) -> int:
    """A cleanup that writes to the terminal (rich's Live putting the cursor back) while the
    signal unwinds; after a hangup the tty answers EIO."""
    try:
        raise signal_exc
    finally:
        raise OSError(errno.EIO, "Input/output error")


@SIGNALS
def test_a_cleanup_failing_to_write_while_a_signal_unwinds_ends_like_the_signal(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(hung_up_terminal_in_cleanup, (exc,), {}) == code
    assert capsys.readouterr().err == f"netsleuth: {line}\n"
