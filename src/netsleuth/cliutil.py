"""What every command shares at the edges: signals, I/O errors as one line, output paths that
never clobber an input, and a console that never reads input-derived text as markup.

Exit codes as in cli.py: 0 ok, 1 findings at --fail-on, 2 unusable input or output, 3 a
missing privilege or facility; 128 + the signal's number when stopped by one of the signals
that end a run (netsleuth.signals.SIGNALS): 130 SIGINT, 143 SIGTERM, 129 SIGHUP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from netsleuth import signals
from netsleuth.errors import InputError, NetsleuthError
from netsleuth.signals import ending_signals

if TYPE_CHECKING:
    from rich.console import Console

# Linux IFNAMSIZ is 16 including the NUL (include/uapi/linux/if.h); dev_valid_name()
# (net/core/dev.c) also refuses "/", ":" and whitespace, "." and "..".
IFNAMSIZ = 16


class Terminated(BaseException):
    """SIGTERM or SIGHUP (`signum`), raised where the process is, so every `finally` and
    `with` runs (temp directories, tracefs instances, the terminal's cursor) before the
    process exits 128 + signum: 143, 129."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# What the one stderr line says for each signal that ends a run. A hangup's line most
# likely goes nowhere (the terminal is gone: _say drops the error), but not when stderr
# is a file or the signal came from `kill -HUP`.
_SAID = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


class SigintOutsideCommand(BaseException):
    """SIGINT outside a command's own code: while click parses the command line, or after
    the command returned. Not a KeyboardInterrupt, which click's main() turns into
    "Aborted!" and exit 1 (click/core.py, BaseCommand.main); like Terminated it passes
    through click untouched, and entry() ends the run with one line and 130."""


# The exceptions the signals that end a run raise (install_signals, run_guarded).
_SIGNALLED = (KeyboardInterrupt, SigintOutsideCommand, Terminated)


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _on_int(signum: int, frame: FrameType | None) -> None:
    raise SigintOutsideCommand


def install_signals() -> None:
    """Called first thing by the entry point, before anything is created: SIGTERM and SIGHUP
    unwind like SIGINT does instead of killing the process mid-way (SIGHUP stays ignored
    under nohup: signals.ending_signals). SIGINT raises SigintOutsideCommand until
    run_guarded starts the command, which sees KeyboardInterrupt as Python code expects
    (rich's Live, multiprocessing's workers, the commands' own cleanup)."""
    for s in ending_signals():
        signal.signal(s, _on_int if s == signal.SIGINT else _on_term)


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _settle_stdout() -> None:
    """Flush what stdout holds now, or drop it if it cannot be written: the interpreter's
    own flush at exit would fail again and turn the exit code into 120."""
    try:
        _flush_stdout()
    except (OSError, ValueError):
        _quiet_stdout()


def io_message(err: OSError) -> str:
    what = err.strerror or str(err)
    if err.filename is None:
        return f"cannot read or write: {what}"
    return f"{err.filename}: {what}"


def run_guarded(fn: Callable[..., int], args: Any, kwargs: Any) -> int:
    """Run a command; every way out is an exit code and at most one line on stderr. Under
    entry() SIGINT is KeyboardInterrupt inside the command only (install_signals)."""
    if signal.getsignal(signal.SIGINT) is not _on_int:
        return _run_command(fn, args, kwargs)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _run_command(fn, args, kwargs)
    finally:
        # Back to SigintOutsideCommand for click's unwinding after the command (sys.exit in
        # cli.guarded): a SIGINT there is one line and 130 from entry(), not "Aborted!".
        signal.signal(signal.SIGINT, _on_int)


def _run_command(fn: Callable[..., int], args: Any, kwargs: Any) -> int:
    try:
        code = fn(*args, **kwargs)
        try:
            _flush_stdout()
        except BrokenPipeError:
            raise
        except OSError as err:
            err.filename = "stdout"
            raise
        return code
    except NetsleuthError as err:
        _say(f"netsleuth: {err}")
        return err.exit_code
    except _SIGNALLED as err:
        return _stopped(_signal_of(err))
    except BrokenPipeError:
        # The reader of our output went away (| head): what it wanted, it got. Not an
        # error, and not exit 1 (which means findings at --fail-on).
        _quiet_stdout()
        return 0
    except OSError as err:
        signalled = _raised_by_signal(err)
        if signalled is None and signals.HUNG_UP:
            # A run that ended with its report after a hangup (signals.Stop), the report
            # then written to the terminal that hung up.
            signalled = signal.SIGHUP
        if signalled is not None:
            # Raised by a cleanup while a signal unwound: after a hangup, the terminal's
            # reset (rich's Live, a progress bar) is written to a tty that answers EIO.
            _settle_stdout()
            return _stopped(signalled)
        # stdout on a full disk, an --export or -o in a missing or read-only directory,
        # a closed stdin: one line, exit 2.
        _settle_stdout()
        _say(f"netsleuth: {io_message(err)}")
        return 2
    except RecursionError:  # a RuntimeError: before the clause below
        _say("netsleuth: the input is nested too deeply to read")
        return 2
    except MemoryError:
        # The readers and trackers are bounded well under the 300 MB design bar, so this
        # is a machine (or ulimit -v, a cgroup) short of what they need: a missing
        # facility, not a bad input. Its traceback was the one left (helper-56).
        _settle_stdout()
        _say(
            "netsleuth: out of memory: give the process more (ulimit -v, the cgroup) "
            "or try --workers 1"
        )
        return 3
    except (SystemError, RuntimeError, ImportError) as err:
        signalled = _raised_by_signal(err)
        if signalled is None:
            raise
        return _stopped(signalled)


def _signal_of(err: BaseException) -> int:
    """The signal behind one of _SIGNALLED: a KeyboardInterrupt is SIGINT's."""
    return err.signum if isinstance(err, Terminated) else signal.SIGINT


def _stopped(signum: int) -> int:
    """The one line and the exit code of a run a signal ended: 128 + its number."""
    if signum == signal.SIGHUP:
        _settle_stdout()  # most likely a terminal that hung up: writing it answers EIO
    _say(f"netsleuth: {_SAID.get(signal.Signals(signum), 'stopped by a signal')}")
    return 128 + signum


def _raised_by_signal(err: BaseException) -> int | None:
    """The signal when a signal's exception (_signal_of) is in err's chain of causes. A signal
    handler that raises where Python wraps what it raises surfaces as another error: in C
    code calling back into Python (os.fspath's __instancecheck__, seen under SIGTERM in a
    spilling steer) as SystemError "returned a result with an exception set"; in a class
    body's __set_name__ (Python 3.11: type_new_set_names, seen under SIGTERM at start-up
    while platform.uname_result was being built) as RuntimeError "Error calling
    __set_name__"; in an import the signal cut short as ImportError (NumPy's
    "numpy._core.multiarray failed to import", seen under SIGINT 50 ms into a scan, once
    scan stopped importing the worker pool first). The signal's exception is the cause of
    each."""
    cause = err.__cause__ or err.__context__
    for _ in range(8):  # a chain is short; a cycle must not loop
        if cause is None:
            return None
        if isinstance(cause, _SIGNALLED):
            return _signal_of(cause)
        cause = cause.__cause__ or cause.__context__
    return None


def _say(line: str) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.write(line.replace("\n", " ") + "\n")
        sys.stderr.flush()


def stdout_console() -> Console:
    """The one console for text output. Every string printed comes from a capture, a path,
    a device or a /proc text somewhere, so none is parsed as rich markup or emoji codes
    (`scan 'nope[/x]'` raised MarkupError; `[incident-42]/eth0.pcap` printed as
    `/eth0.pcap`): styles are set with Text(style=...) only."""
    from rich.console import Console  # not imported for JSON output: 40 ms of start-up

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here, which means "findings at --fail-on": `| head` is no error.
            self.quiet = True
            raise BrokenPipeError(32, "Broken pipe")

    return _Console(highlight=False, soft_wrap=False, markup=False, emoji=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, markup=False, emoji=False)


# --- argument checks -------------------------------------------------------------------


def check_ifname(name: str, option: str) -> str:
    raw = name.encode("utf-8", "surrogateescape")
    if (
        not raw
        or len(raw) >= IFNAMSIZ
        or name in (".", "..")
        or any(c in name for c in "/: \t\n\r\0")
    ):
        raise InputError(
            option, f"{name[:40]!r} is not a network device name (1-15 bytes, no / : or spaces)"
        )
    return name


def entry() -> None:
    """The console script: signal handling first, then the command line (click and the
    command modules are imported after it, so Ctrl-C during start-up prints one line). click
    runs in its standalone mode (usage errors: its usage text and exit 2); a signal while it
    parses raises SigintOutsideCommand or Terminated, which click lets through to here."""
    install_signals()
    try:
        from netsleuth.cli import main

        main()
    except _SIGNALLED as err:
        sys.exit(_stopped(_signal_of(err)))
    except (SystemError, RuntimeError, ImportError) as err:
        signalled = _raised_by_signal(err)
        if signalled is None:
            raise
        sys.exit(_stopped(signalled))
