"""Serve the collector over HTTP until SIGINT/SIGTERM/SIGHUP (with --drops the drop tracer runs in
the main thread, feeding DropTotals; the HTTP server answers from its own threads)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from netsleuth.errors import InputError, NetsleuthError
from netsleuth.exporter.collector import DropTotals, HostCollector
from netsleuth.host.sample import parse_sample
from netsleuth.sources.cpulist import uint
from netsleuth.sources.hostfs import Snapshot, read_live, read_snapshot


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    number = uint(port, 65536)  # int() took '²' for a digit and raised past 4,300 digits
    if not sep or not number:
        raise ValueError(f"{text[:60]!r} is not HOST:PORT (e.g. 127.0.0.1:9797)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return host, number


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


class Scrapes:
    """The WSGI app: prometheus-client's, except when the host cannot be read at a scrape
    (it grew past MAX_VALUES after the exporter started: SampleTooLargeError, or any other
    NetsleuthError from the collector). Then the scrape fails as a whole, HTTP 503 with the
    reason on one line, so Prometheus sets `up` to 0 for the target and shows the reason, as
    for an exporter that is down: serving 200 with the host's series missing would leave
    them to go stale and every alert on them silent, with nothing saying why. Not a 500 and
    a traceback on stderr at every scrape (wsgiref's handler, before): stderr gets one line
    when scrapes start failing and one when they succeed again, never one per scrape."""

    def __init__(self, app: Callable[..., Iterable[bytes]], note: Callable[[str], None]) -> None:
        self.app = app
        self.note = note
        self.lock = threading.Lock()
        self.failing = False

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            body = self.app(environ, start_response)
        except NetsleuthError as err:
            self._now(failing=True, why=str(err))
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")]
            )
            return [f"netsleuth: {err}".replace("\n", " ").encode() + b"\n"]
        self._now(failing=False, why="")
        return body

    def _now(self, *, failing: bool, why: str) -> None:
        with self.lock:
            if failing == self.failing:
                return
            self.failing = failing
        if failing:
            self.note(f"netsleuth: scrapes answer 503 until the host can be read: {why}")
        else:
            self.note("netsleuth: the host can be read again: scrapes answer 200")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress does not hold the exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line per request."""


def serve(
    listen: tuple[str, int],
    *,
    drops: bool = False,
    root: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] = lambda line: None,
) -> None:
    def read() -> Snapshot:
        return read_snapshot(root) if root is not None else read_live()

    totals = DropTotals() if drops else None
    # Read and parsed once before serving: a root or host that cannot be (SampleTooLargeError:
    # MAX_VALUES) is one line and exit 2, not a traceback at every scrape (helper-49).
    parse_sample(read(), 0.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(read, totals, root or Path("/")))
    app = Scrapes(make_wsgi_app(registry), on_note)
    server_class = _Server6 if ":" in listen[0] else _Server
    try:
        server = make_server(listen[0], listen[1], app, server_class, _Quiet)
    except OSError as err:
        raise InputError(f"{listen[0]}:{listen[1]}", f"cannot listen: {err.strerror}") from None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
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
