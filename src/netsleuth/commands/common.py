"""What the command modules share: stderr notes, the JSON printer, the progress line, the
HTML writer and the argument parsers several commands take (CPU lists, kernel versions)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from netsleuth.errors import InputError


def say(line: str) -> None:
    """One line on stderr (notes, where a file was written, failed inputs)."""
    click.echo(line, err=True)


def print_json(doc: dict[str, Any]) -> None:
    from netsleuth.report.jsonout import dumps

    click.echo(dumps(doc))


def cpu_list(text: str, option: str = "--rps-cpus") -> tuple[int, ...]:
    """'0-3,8' -> (0, 1, 2, 3, 8), in the kernel's cpulist syntax (sources.cpulist), with
    all, N and A-B:USED/GROUP. N is this host's last possible CPU, as the kernel's is: profile
    --cpus samples this host, and steer --rps-cpus models this host's RPS by default as
    --kernel does (a list for another host is written out: it is not bounded by this one's
    CPUs). Empty items are skipped ('0,,1' is 0 and 1) as the kernel's bitmap_parselist
    (lib/bitmap.c) does; a list with no CPU at all is refused: `profile --cpus ''` sampled
    no CPU and reported nothing, exit 0, and `steer --rps-cpus ,` raised ValueError (max()
    of no CPUs)."""
    from netsleuth.sources.cpulist import MAX_CPUS, parse_cpu_list

    try:
        cpus = tuple(parse_cpu_list(text, last_possible_cpu()))
    except ValueError as err:
        raise InputError(
            option, f"{text[:40]!r} is not a CPU list like 0-3,8 below {MAX_CPUS} ({err})"
        ) from None
    if not cpus:
        raise InputError(option, f"{text[:40]!r} names no CPU: give a list like 0-3,8")
    return cpus


def last_possible_cpu() -> int | None:
    """The kernel's nr_cpu_ids - 1 (kernel/smp.c setup_nr_cpu_ids: the last possible CPU), as
    /sys/devices/system/cpu/possible lists them; None when it cannot be read."""
    from netsleuth.sources.cpulist import parse_cpu_list

    try:
        possible = parse_cpu_list(Path("/sys/devices/system/cpu/possible").read_text())
    except (OSError, ValueError):
        return None
    return possible[-1] if possible else None


def kernel_version(text: str | None) -> tuple[int, int]:
    """--kernel 4.9 (or the running kernel's release) as (major, minor)."""
    import platform

    raw = platform.release() if text is None else text  # '' is refused, not the running one
    parts = raw.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        raise InputError("--kernel", f"{raw!r} is not a version like 4.9") from None


class Progress:
    """A transient progress line on stderr while reading, only when stderr is a terminal."""

    def __enter__(self) -> Callable[[str, int], None] | None:
        if not sys.stderr.isatty():
            self._p = None
            return None
        from rich.progress import Progress

        from netsleuth.cliutil import stderr_console

        self._p = Progress(console=stderr_console(), transient=True)
        self._started = False
        self._tasks: dict[str, Any] = {}
        return self._update

    def _update(self, name: str, consumed: int) -> None:
        assert self._p is not None
        if not self._started:
            # Started on the first update, not on entry: its refresh thread would otherwise
            # run while `scan --workers` forks its worker processes (scale/pool.py: context).
            self._p.start()
            self._started = True
        if name not in self._tasks:
            total = os.path.getsize(name) if os.path.isfile(name) else None
            from rich.markup import escape  # the description is a markup template

            self._tasks[name] = self._p.add_task(f"reading {escape(name)}", total=total)
        self._p.update(self._tasks[name], completed=consumed)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None and self._started:
            self._p.stop()


def write_html(path: str, title: str, fill: Callable[[Any, Any], None]) -> None:
    """Build a page with `fill(page, html_module)` and write it; one stderr line says where."""
    from netsleuth.report import html

    page = html.Page(title)
    fill(page, html)
    write_page(page, path, "")


def write_page(page: Any, path: str, what: str) -> None:
    from pathlib import Path

    try:
        size = page.write(Path(path))
    except OSError as err:
        raise InputError(path, f"cannot write the report: {err.strerror}") from None
    say(f"wrote {path} ({size / 1e6:.2f} MB{what})")
