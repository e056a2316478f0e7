"""docs/findings.md, generated from the catalogue: `make docs` writes it, and
tests/test_findings_catalogue.py fails when the file differs from what this prints.

    python -m netsleuth.findings.docs docs/findings.md   (what `make docs` runs)
    python -m netsleuth.findings.docs                    (to stdout)
"""

from __future__ import annotations

import sys
from pathlib import Path

from netsleuth.findings.catalogue import CATALOGUE, FindingInfo

HEADER = """\
# Finding ids

<!-- Generated from src/netsleuth/findings/catalogue.py by `make docs`: edit the catalogue,
not this file. -->

The public vocabulary of netsleuth findings: stable once released. `severity` is the
default; `layer` is `outer` or `inner` (inside a tunnel) for packet findings. Every id any
command can emit is an entry of `src/netsleuth/findings/catalogue.py` (its summary and
explanation are what the reports print); the decode anomalies are set by the decoders
(`src/netsleuth/decode/table.py`, `ANOMALY_IDS`). `refs` name entries of the known-issues
catalogue, `src/netsleuth/findings/known_issues.json` (id, title, component, affected and
fixed versions, upstream commit or advisory, what breaks, mitigation, source).

| id | severity | meaning | prior art | refs |
|---|---|---|---|---|
"""


def row(fid: str, info: FindingInfo) -> str:
    """One table row. A cell holding '|' or a line break would split the row: refused."""
    refs = ", ".join(f"`{r}`" for r in info.refs)
    cells = (f"`{fid}`", info.severity.label, info.meaning, info.prior_art, refs)
    for cell in cells:
        if "|" in cell or "\n" in cell:
            raise ValueError(f"{fid}: a findings.md cell cannot hold '|' or a newline: {cell!r}")
    return "| " + " | ".join(cells) + " |"


def render() -> str:
    """The whole of docs/findings.md."""
    return HEADER + "".join(row(fid, info) + "\n" for fid, info in CATALOGUE.items())


def main(argv: list[str]) -> None:
    text = render()  # rendered whole before the file is touched: a refused cell leaves it
    if not argv:
        sys.stdout.write(text)
        return
    Path(argv[0]).write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
