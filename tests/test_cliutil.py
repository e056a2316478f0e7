"""The command guard: a signal's exception that C code wrapped in a SystemError (a handler
raising while os.fspath calls back into Python) still ends the run as that signal."""

from __future__ import annotations

import pytest

from netsleuth.cliutil import Terminated, run_guarded


def wrapped(signal_exc: BaseException) -> int:
    try:
        raise signal_exc
    except BaseException as err:
        raise SystemError(
            "<built-in function fspath> returned a result with an exception set"
        ) from err


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [(Terminated(), 143, "terminated"), (KeyboardInterrupt(), 130, "interrupted")],
)
def test_a_signal_inside_c_code_ends_like_the_signal(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(wrapped, (exc,), {}) == code
    assert capsys.readouterr().err == f"netsleuth: {line}\n"


def test_any_other_system_error_is_a_bug_and_raises() -> None:
    with pytest.raises(SystemError):
        run_guarded(wrapped, (ValueError("x"),), {})
