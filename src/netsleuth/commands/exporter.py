"""`netsleuth exporter`: serve the receive path's counters and findings to Prometheus."""

from __future__ import annotations

import os
from dataclasses import dataclass

from netsleuth.commands.common import say
from netsleuth.errors import FacilityError, InputError


@dataclass(frozen=True)
class Options:
    listen: str
    drops: bool
    root: str | None


def run(opts: Options) -> None:
    """Serve until stopped; stderr says where, and warns when not on loopback."""
    from pathlib import Path

    from netsleuth.exporter.run import is_loopback, parse_listen, serve

    try:
        address = parse_listen(opts.listen)
    except ValueError as err:
        raise InputError("--listen", str(err)) from None
    if opts.drops and os.geteuid() != 0:
        raise FacilityError("exporter --drops needs root (a tracefs instance): run it with sudo")

    def ready(url: str) -> None:
        # Said once listening: an address it cannot listen on is one line, exit 2.
        if not is_loopback(address[0]):
            say(
                f"netsleuth: serving on {address[0]}, not loopback: anyone who reaches it can "
                "read this host's counters"
            )
        say(f"serving {url}")

    root = Path(opts.root) if opts.root else None
    serve(address, drops=opts.drops, root=root, on_ready=ready, on_note=say)


def execute(opts: Options) -> int:
    run(opts)
    return 0
