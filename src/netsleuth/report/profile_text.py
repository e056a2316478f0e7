"""`profile` for people: each CPU's context shares, its hot NET_RX functions with their
callers, the notes, then the findings with their next steps. Function names come from the
running kernel's kallsyms; the console parses no markup (cliutil.stdout_console)."""

from __future__ import annotations

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from netsleuth.findings import Finding, Severity
from netsleuth.profile.contexts import CONTEXTS, NET_RX
from netsleuth.profile.run import Profile
from netsleuth.profile.stacks import CpuProfile
from netsleuth.report.text import STYLE

TOP_SHOWN = 10
CALLERS_SHOWN = 2


def context_table(p: Profile) -> Table:
    t = Table(title="share of samples by context", title_justify="left", box=None)
    t.add_column("cpu", justify="right")
    t.add_column("samples", justify="right")
    for c in CONTEXTS:
        t.add_column(c, justify="right")
    for cpu in p.cpus:
        t.add_row(
            str(cpu.cpu), f"{cpu.samples:,}", *(f"{100 * cpu.share(c):.0f}%" for c in CONTEXTS)
        )
    return t


def net_rx_table(cpu: CpuProfile) -> Table:
    rx = cpu.contexts[NET_RX]
    t = Table(
        title=f"CPU {cpu.cpu}: NET_RX functions ({rx:,} samples), by inclusive samples",
        title_justify="left",
        box=None,
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("function", "left"),
        ("self", "right"),
        ("incl", "right"),
        ("incl %", "right"),
        ("cause", "left"),
        ("called from (nearest first)", "left"),
    )
    for col, just in columns:
        t.add_column(col, justify=just)
    for r in cpu.net_rx_top[:TOP_SHOWN]:
        callers = " < ".join(r.callers[:CALLERS_SHOWN])
        if len(r.callers) > CALLERS_SHOWN:
            callers += " < ..."
        t.add_row(
            r.function,
            f"{r.self_samples:,}",
            f"{r.inclusive:,}",
            f"{100 * r.inclusive / rx:.0f}%" if rx else "-",
            r.cause or "",
            callers,
        )
    return t


def render_profile_findings(console: Console, findings: list[Finding]) -> None:
    if not findings:
        console.print(Text("no findings", style="green"))
        return
    for sev in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
        for f in (x for x in findings if x.severity == sev):
            line = Text(f"{sev.label.upper()} {f.id}", style=STYLE[sev])
            line.append(f"  {f.count:,} sample(s): {f.summary}", style="default")
            console.print(line)
            console.print(Text("    " + f.explanation, style="dim"))
            if "next" in f.evidence:
                console.print(Text(f"    next: {f.evidence['next']}"))
            if "source" in f.evidence:
                console.print(Text(f"    source: {f.evidence['source']}", style="dim"))


def render_profile(console: Console, p: Profile) -> None:
    total = sum(c.samples for c in p.cpus)
    cpus = ", ".join(str(c.cpu) for c in p.cpus)
    console.print(
        Text(
            f"netsleuth profile: {total:,} samples on CPU {cpus} in {p.seconds:.1f} s at "
            f"{p.frequency} Hz, {p.lost:,} lost",
            style="bold",
        )
    )
    console.print(context_table(p))
    for cpu in p.cpus:
        if cpu.net_rx_top:
            console.print()
            console.print(net_rx_table(cpu))
    for note in p.notes:
        console.print(Text(f"note: {note}", style="dim"))
    console.print()
    render_profile_findings(console, p.findings)
