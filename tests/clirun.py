"""Run a netsleuth command in a test and check how it ended: no exception, no traceback, and
exactly the exit code the test names (README.md: 0 clean, 1 findings at --fail-on, 2 unusable
input, 3 missing privilege or facility). A looser check such as `exit_code in (0, 1)` passes
on a crash: click's CliRunner reports an uncaught exception as exit code 1.

invoke() runs the command in this process (click's CliRunner: fast, and monkeypatch reaches
it); run() runs the installed console script in a child process (signals, real stdin and
stdout, the environment)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()


def _check(args: Sequence[str], code: int, ran: Ran) -> Ran:
    shown = " ".join(args)
    assert "Traceback (most recent call last)" not in ran.out + ran.err, (
        f"netsleuth {shown}: a traceback\n{ran.err}"
    )
    assert ran.code == code, (
        f"netsleuth {shown}: exit {ran.code}, expected {code}\nstderr: {ran.err[-2000:]}"
    )
    return ran


def invoke(
    *args: str,
    code: int = 0,
    input: str | bytes | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Ran:
    """`netsleuth ARGS` in this process; fails the test on an exception or another code."""
    from netsleuth.cli import main

    res = CliRunner().invoke(main, list(args), input=input, env=env)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        assert res.exc_info is not None
        shown = "".join(traceback.format_exception(*res.exc_info))
        raise AssertionError(f"netsleuth {' '.join(args)} raised:\n{shown}")
    return _check(args, code, Ran(res.exit_code, res.stdout, res.stderr))


def run(
    *args: str,
    code: int = 0,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    prefix: Sequence[str] = (),
) -> Ran:
    """The console script `netsleuth ARGS` in a child process (after `prefix`, e.g.
    `ip netns exec NAME`); fails the test on a traceback or another exit code."""
    proc = subprocess.run(
        [*prefix, NETSLEUTH, *args],
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        timeout=timeout,
        env=None if env is None else dict(env),
        check=False,
    )
    out, err = (b.decode("utf-8", "replace") for b in (proc.stdout, proc.stderr))
    return _check(args, code, Ran(proc.returncode, out, err))
