"""Human output with rich: tables on a terminal, plain readable text in a pipe."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from netsleuth.findings import Finding, Severity
from netsleuth.findings.known_issues import known_issues
from netsleuth.scan import ScanResult

STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def render_scan(console: Console, result: ScanResult, title: str | None = None) -> None:
    head = title or "netsleuth scan"
    console.print(
        Text(
            f"{head}: {len(result.inputs)} input(s), {result.packets:,} packets, "
            f"{_human_bytes(result.bytes)}",
            style="bold",
        )
    )
    inputs = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("input", "format", "packets", "bytes", "status"):
        inputs.add_column(col, justify="right" if col in ("packets", "bytes") else "left")
    for i in result.inputs:
        fmt = (i.format or "-") + (" (gzip)" if i.compressed else "")
        status = Text(i.error, style="red") if i.error else Text("ok", style="green")
        inputs.add_row(i.path, fmt, f"{i.packets:,}", _human_bytes(i.bytes), status)
    console.print(inputs)
    s = result.summary.to_json()
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column("what", style="bold")
    summary.add_column("counts")
    for key in ("link", "l3", "tunnels"):
        if s[key]:
            summary.add_row(key, ", ".join(f"{k} {v:,}" for k, v in s[key].items()))
    for key in ("vlan_tagged", "mpls", "fragments"):
        if s[key]:
            summary.add_row(key.replace("_", " "), f"{s[key]:,}")
    console.print(summary)
    render_findings(console, result.findings)


def render_findings(console: Console, findings: list[Finding]) -> None:
    if not findings:
        console.print(Text("no findings", style="green"))
        return
    for sev in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
        group = [f for f in findings if f.severity == sev]
        if not group:
            continue
        console.print(Text(f"\n{sev.label.upper()} ({len(group)})", style=STYLE[sev]))
        for f in group:
            where = f" [{f.layer}]" if f.layer else ""
            line = Text(f"  {f.id}{where}", style=STYLE[sev])
            line.append(f"  {f.count:,} packet(s): {f.summary}", style="default")
            console.print(line)
            if f.input and len({x.input for x in findings}) > 1:
                console.print(f"    in {f.input}", highlight=False)
            if f.packets:
                more = f" (+{f.count - len(f.packets):,} more)" if f.count > len(f.packets) else ""
                frames = ", ".join(str(p) for p in f.packets[:12])
                extra = ", ..." if len(f.packets) > 12 else ""
                console.print(f"    frames: {frames}{extra}{more}", highlight=False)
            console.print(Text("    " + f.explanation, style="dim"))
            for ref in f.refs:
                issue = known_issues().get(ref)
                if issue is not None:
                    console.print(
                        f"    known issue {ref}: {issue.title} (fixed: {issue.fixed})",
                        highlight=False,
                    )
