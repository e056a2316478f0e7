"""Build the compiled helpers: the sequential walks over pcap/pcapng records and over ftrace
ring-buffer pages, the one-pass decode of the common Ethernet/IP/TCP|UDP prefix, and steer's
flow fields, RSS and row hashes and per-key tally; profile's perf_event_open and ring
control-page atomics; the fragment audit's walk over a batch's datagram trains.

Everything else is NumPy; the comment at the top of each .c file says why its loop is in C.
"""

from setuptools import Extension, setup


def _ext(module: str) -> Extension:
    """netsleuth.a.b from src/netsleuth/a/b.c, warnings as errors."""
    return Extension(
        module,
        sources=["src/" + module.replace(".", "/") + ".c"],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
    )


setup(
    ext_modules=[
        _ext("netsleuth.capture._framing"),
        _ext("netsleuth.decode._prefix"),
        _ext("netsleuth.steering._fields"),
        _ext("netsleuth.steering._mix64"),
        _ext("netsleuth.steering._tally"),
        _ext("netsleuth.steering._toeplitz"),
        _ext("netsleuth.sources._ringbuf"),
        _ext("netsleuth.profile._perf"),
        _ext("netsleuth.capture._ring"),
        _ext("netsleuth.checks._trains"),
    ]
)
