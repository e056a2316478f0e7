"""Build the one compiled helper: the sequential record walk over pcap/pcapng buffers.

Everything else is NumPy; see docs/architecture.md for why this one loop is in C.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "netsleuth.capture._framing",
            sources=["src/netsleuth/capture/_framing.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
        )
    ]
)
