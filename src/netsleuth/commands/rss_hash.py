"""`netsleuth rss-hash`: the Toeplitz RSS hash a NIC computes for one flow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from netsleuth.commands.common import print_json
from netsleuth.errors import InputError


@dataclass(frozen=True)
class Options:
    key: str
    src: str
    dst: str
    sport: int | None
    dport: int | None
    fmt: str


@dataclass(frozen=True)
class RssHash:
    value: int
    input: bytes  # the bytes hashed: addresses, then ports when given
    key: str  # as given when named (microsoft, symmetric), else the key in hex

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document

        return document(
            "rss-hash", [], hash=f"{self.value:#010x}", input=self.input.hex(), key=self.key
        )


def run(opts: Options) -> RssHash:
    from netsleuth.steering.toeplitz import Toeplitz, parse_key, rss_input

    try:
        k = parse_key(opts.key)
        data = rss_input(opts.src, opts.dst, opts.sport, opts.dport)
        value = Toeplitz(k).hash(data)
    except ValueError as err:
        raise InputError("rss-hash", str(err)) from err
    return RssHash(value, data, opts.key if opts.key in ("microsoft", "symmetric") else k.hex())


def execute(opts: Options) -> int:
    r = run(opts)
    if opts.fmt == "json":
        print_json(r.to_json())
    else:
        click.echo(f"{r.value:#010x}")
    return 0
