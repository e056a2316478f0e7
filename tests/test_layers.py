"""The imports run one way, as the data flows (README, Layout): host sources (I/O) ->
snapshot -> rates -> rules, decode below the analyses that read its tables, and the
findings package below everything that reports. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SRC = ROOT / "src" / "netsleuth"

# package -> the netsleuth packages and modules it must never import.
FORBIDDEN = {
    "sources": {"host", "doctor", "record", "exporter", "report", "cli", "commands"},
    "host": {"doctor", "record", "exporter", "report", "cli", "commands"},
    "decode": {"checks", "steering", "scan", "pipeline", "report", "cli", "commands"},
    "capture": {"decode", "checks", "steering", "report", "cli", "commands"},
}
# The findings package imports nothing of netsleuth's but itself: every command uses it.
LEAVES = {"findings"}


def imported(path: Path) -> set[str]:
    """The netsleuth subpackage or top-level module (the name after "netsleuth.") of every
    import in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "netsleuth":
                names = [f"netsleuth.{a.name}" for a in node.names]
        out |= {n.split(".")[1] for n in names if n.startswith("netsleuth.")}
    return out


def test_packages_import_only_downwards() -> None:
    wrong = []
    for package, banned in FORBIDDEN.items():
        files = sorted((SRC / package).glob("*.py"))
        assert files, package
        for path in files:
            for name in sorted(imported(path) & banned):
                wrong.append(f"{package}/{path.name} imports netsleuth.{name}")
    assert wrong == []


def test_the_findings_package_is_a_leaf() -> None:
    for package in LEAVES:
        for path in sorted((SRC / package).glob("*.py")):
            assert imported(path) <= {package}, path


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from netsleuth.host.counters import parse_softnet\n")
    assert imported(bad) == {"host"}
