"""Build the compiled helpers: the sequential walks over pcap/pcapng records and over ftrace
ring-buffer pages, the one-pass decode of the common Ethernet/IP/TCP|UDP prefix, and the row
hash of steer's models.

Everything else is NumPy; the comment at the top of each .c file says why its loop is in C.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "netsleuth.capture._framing",
            sources=["src/netsleuth/capture/_framing.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
        ),
        Extension(
            "netsleuth.decode._prefix",
            sources=["src/netsleuth/decode/_prefix.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
        ),
        Extension(
            "netsleuth.steering._mix64",
            sources=["src/netsleuth/steering/_mix64.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
        ),
        Extension(
            "netsleuth.sources._ringbuf",
            sources=["src/netsleuth/sources/_ringbuf.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
        ),
    ]
)
