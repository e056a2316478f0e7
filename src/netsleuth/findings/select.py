"""What the user keeps and what fails the run: `--only`, `--min-severity`, `--fail-on`.

Every command that reports findings applies these the same way (README, "JSON": exit 1 when a
finding at or above --fail-on exists; --only and --min-severity decide what is shown,
exported and judged)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from netsleuth.findings.record import Finding, Severity

# The choices of --min-severity, --fail-on and --trigger, lowest first.
SEVERITIES = tuple(s.label for s in Severity)


def select(
    findings: Sequence[Finding], *, only: Sequence[str] = (), min_severity: Severity = Severity.INFO
) -> list[Finding]:
    """Findings whose id matches one of the `only` globs (all when empty), at or above
    `min_severity`."""
    return [
        f
        for f in findings
        if f.severity >= min_severity
        and (not only or any(fnmatch.fnmatchcase(f.id, g) for g in only))
    ]


def fail_exit(findings: Sequence[Finding], fail_on: str | None) -> int:
    """1 when a finding at or above `fail_on` exists, else 0 (no --fail-on: always 0)."""
    if fail_on is None:
        return 0
    threshold = Severity.parse(fail_on)
    return 1 if any(f.severity >= threshold for f in findings) else 0
