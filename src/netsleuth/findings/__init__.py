"""Findings as their own package: what every command reports, and the one vocabulary of it.

  record.py        Finding and Severity, the records every command emits (README, "JSON":
                   the Finding JSON)
  catalogue.py     every finding id any command can emit: severity, summary, explanation,
                   the docs table's meaning and prior art, and refs into known_issues.json
  known_issues.py  the known-issues catalogue (known_issues.json) that refs point to
  select.py        what the user keeps and what fails the run: --only, --min-severity,
                   --fail-on
  docs.py          docs/findings.md, generated from the catalogue (`make docs`)

Light to import (no NumPy, no rich): `netsleuth --help` and JSON output load it.
"""

from __future__ import annotations

from netsleuth.findings.record import MAX_FRAMES, Finding, Severity

__all__ = ["MAX_FRAMES", "Finding", "Severity"]
