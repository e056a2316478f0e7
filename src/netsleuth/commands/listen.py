"""`netsleuth listen`: the listening-socket lookup cost per SYN, modelled from the real
socket table (proc/net/tcp and tcp6 under --root)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from netsleuth.cliutil import stdout_console
from netsleuth.commands.common import kernel_version, print_json, say
from netsleuth.errors import InputError
from netsleuth.findings import Finding
from netsleuth.findings.select import fail_exit

if TYPE_CHECKING:
    from netsleuth.host.listen import ListenModel


@dataclass(frozen=True)
class Options:
    root: str
    kernel: str | None
    fmt: str
    fail_on: str | None


@dataclass
class ListenReport:
    root: str
    model: ListenModel
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from netsleuth.report.jsonout import document

        data = asdict(self.model)
        data["kernel"] = f"{self.model.kernel[0]}.{self.model.kernel[1]}"
        return document("listen", self.findings, root=self.root, model=data, notes=self.notes)


def run(opts: Options) -> ListenReport:
    from pathlib import Path

    from netsleuth.host.listen import model
    from netsleuth.host.listen_rules import judge
    from netsleuth.sources.procnet import read_listeners

    listeners, notes = read_listeners(Path(opts.root))
    if not listeners and len(notes) == 2:  # the one line: not the two notes before it
        raise InputError(opts.root, "no proc/net/tcp or tcp6 here: is --root a Linux root?")
    for note in notes:
        say(f"netsleuth: {note}")
    m = model(listeners, kernel_version(opts.kernel))
    return ListenReport(opts.root, m, judge(m), notes)


def execute(opts: Options) -> int:
    report = run(opts)
    if opts.fmt == "json":
        print_json(report.to_json())
    else:
        from netsleuth.report.listen_text import render_listen

        render_listen(stdout_console(), report.model, report.findings)
    return fail_exit(report.findings, opts.fail_on)
