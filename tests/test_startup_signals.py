"""A signal while click parses the command line (before the guarded command runs) ends the
run like one during the command: one stderr line and 130/143/129, never click's "Aborted!" and
exit 1. Deterministic: a launcher wraps click's parse_args to send the signal to its own
process there, so it lands inside click's main() every time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from netsleuth import cliutil

# The signal is pending when os.kill returns; Python runs its handler at the next bytecode
# check, the call into the real parse_args: inside click's main(), before any callback.
LAUNCHER = """
import os, sys
import click.core
from netsleuth.cliutil import entry

SIG = int(sys.argv.pop(1))
parse_args = click.core.Command.parse_args

def signalled(self, ctx, args):
    os.kill(os.getpid(), SIG)
    return parse_args(self, ctx, args)

click.core.Command.parse_args = signalled
sys.argv[0] = "netsleuth"
entry()
"""


def _netsleuth(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("sig", "code", "line"),
    [
        (signal.SIGINT, 130, b"netsleuth: interrupted\n"),
        (signal.SIGTERM, 143, b"netsleuth: terminated\n"),
        (signal.SIGHUP, 129, b"netsleuth: hung up\n"),
    ],
)
@pytest.mark.parametrize(
    "argv", [("scan", "-"), ("demo", "--format", "json"), ("--help",)], ids=["scan", "demo", "help"]
)
def test_a_signal_inside_clicks_parsing_is_one_line(
    sig: int, code: int, line: bytes, argv: tuple[str, ...]
) -> None:
    r = _netsleuth(str(int(sig)), *argv)
    assert (r.returncode, r.stderr, r.stdout) == (code, line, b"")


def test_usage_errors_stay_clicks() -> None:
    r = _netsleuth("0", "scan", "--format", "xml", "x")  # signal 0: none sent
    assert r.returncode == 2
    assert r.stdout == b""
    assert r.stderr.decode().splitlines() == [
        "Usage: netsleuth scan [OPTIONS] [CAPTURES]...",
        "Try 'netsleuth scan --help' for help.",
        "",
        "Error: Invalid value for '--format': 'xml' is not one of 'text', 'json'.",
    ]


def test_inside_the_command_sigint_is_keyboard_interrupt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the commands' own code expects (rich's Live, multiprocessing, their cleanup);
    and after the command, SIGINT raises outside it again."""
    seen: list[str] = []

    def command() -> int:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1_000_000):  # the handler runs at the loop's first check
                pass
        except KeyboardInterrupt:
            seen.append("KeyboardInterrupt")
            raise
        return 0

    before = signal.signal(signal.SIGINT, cliutil._on_int)
    try:
        assert cliutil.run_guarded(command, (), {}) == 130
        assert signal.getsignal(signal.SIGINT) is cliutil._on_int
    finally:
        signal.signal(signal.SIGINT, before)
    assert seen == ["KeyboardInterrupt"]
    assert capsys.readouterr().err == "netsleuth: interrupted\n"
