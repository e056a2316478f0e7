"""`netsleuth bpf`: the tcpdump expression and classic BPF program of a capture filter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsleuth.commands.common import print_json

if TYPE_CHECKING:
    from netsleuth.bpf import Compiled


@dataclass(frozen=True)
class Options:
    expression: str
    encap: str
    fmt: str


@dataclass(frozen=True)
class BpfResult:
    compiled: Compiled

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document

        c = self.compiled
        return document(
            "bpf",
            [],
            expression=c.expression,
            program=[list(i) for i in c.file_program],
            live_program=[list(i) for i in c.program],
        )


def run(opts: Options) -> BpfResult:
    from netsleuth.bpf import compile_filter

    return BpfResult(compile_filter(opts.expression, opts.encap))


def execute(opts: Options) -> int:
    result = run(opts)
    if opts.fmt == "json":
        print_json(result.to_json())
    else:
        from netsleuth.report.bpf_text import render_bpf

        render_bpf(result.compiled)
    return 0
