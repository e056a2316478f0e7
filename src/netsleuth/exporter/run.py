"""Serve the collector over HTTP until SIGINT/SIGTERM/SIGHUP (with --drops the drop tracer runs in
the main thread, feeding DropTotals; prometheus-client serves from its own thread)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from netsleuth.errors import InputError
from netsleuth.exporter.collector import DropTotals, HostCollector
from netsleuth.host.sample import parse_sample
from netsleuth.sources.hostfs import Snapshot, read_live, read_snapshot


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9797)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return host, int(port)


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def serve(
    listen: tuple[str, int],
    *,
    drops: bool = False,
    root: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    def read() -> Snapshot:
        return read_snapshot(root) if root is not None else read_live()

    totals = DropTotals() if drops else None
    # Read and parsed once before serving: a root or host that cannot be (SampleTooLargeError:
    # MAX_VALUES) is one line and exit 2, not a traceback at every scrape (helper-49).
    parse_sample(read(), 0.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(read, totals, root or Path("/")))
    try:
        server, thread = start_http_server(listen[1], listen[0], registry)
    except OSError as err:
        raise InputError(f"{listen[0]}:{listen[1]}", f"cannot listen: {err.strerror}") from None
    try:
        if on_ready is not None:
            on_ready(f"http://{_url_host(listen[0])}:{server.server_port}/metrics")
        if totals is not None:
            _trace_drops(totals)
        else:
            _wait_for_signal()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _wait_for_signal() -> None:
    from netsleuth.signals import stop_on_signals

    with stop_on_signals() as stop:
        while not stop.requested:
            time.sleep(0.2)


def _trace_drops(totals: DropTotals) -> None:
    from netsleuth.drops.run import Tick, trace
    from netsleuth.ethertypes import protocol_name

    def on_tick(tick: Tick) -> None:
        for g in tick.rows:
            loc = g.location.function if g.location else "unknown"
            totals.add(loc, g.reason or "", protocol_name(g.protocol), g.count)

    trace(duration=None, interval=1.0, on_tick=on_tick)
