"""The finding catalogue is the one source of truth: every id any command can emit is in it,
every finding is built from it, its refs resolve, and docs/findings.md is generated from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from netsleuth.findings.catalogue import CATALOGUE
from netsleuth.findings.docs import render
from netsleuth.findings.known_issues import known_issues
from tests.conftest import ROOT

SRC = ROOT / "src" / "netsleuth"
NAMESPACES = {fid.split(".")[0] for fid in CATALOGUE}
ID = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")


def modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(SRC.rglob("*.py"))]


def id_pattern(node: ast.expr) -> str | None:
    """A string literal or f-string that looks like a finding id ("id" or "id|layer", as
    FrameTally keys are), as a regex: an f-string's fields match any id word."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = re.escape(node.value.partition("|")[0])
    elif isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(re.escape(v.value))
            else:
                parts.append("[a-z0-9_]+")
        text = "".join(parts).partition(r"\|")[0]
    else:
        return None
    plain = text.replace("\\", "").replace("[a-z0-9_]+", "x")
    if not ID.fullmatch(plain) or plain.split(".")[0] not in NAMESPACES | {"x"}:
        return None
    if not re.search(r"[a-z]{2,}", plain.replace("x", " ")):
        return None  # f"{a}.{b}.{c}" (an address): no word of an id in it
    return text


def test_every_id_literal_in_the_source_is_catalogued() -> None:
    """Ids written in the source (rules, checks, decoders' ANOMALY_IDS, f-strings such as
    f"{ip}.fragment.overlap") each name a catalogue entry: a typo or an id added without
    its entry fails here, not in a user's run."""
    ids = set(CATALOGUE)
    missing = []
    seen = 0
    for path, tree in modules():
        if path.parent.name == "findings":
            continue
        # An f-string's parts are not ids on their own: only the whole is matched.
        parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if id(node) in parts or not isinstance(node, ast.expr):
                continue
            pattern = id_pattern(node)
            if pattern is None:
                continue
            seen += 1
            if not any(re.fullmatch(pattern, fid) for fid in ids):
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {pattern}")
    assert missing == []
    assert seen >= 60  # the scan sees the ids (the rules, the checks, ANOMALY_IDS)


def test_every_finding_is_built_from_the_catalogue() -> None:
    """No Finding(...) outside the findings package and no replace(f, id=...): every
    finding starts as catalogue_finding(); a rule may then set its own severity and
    explanation (drops' and profile's known causes, doctor's ring rule), not its id."""
    offenders = []
    for path, tree in modules():
        if path.parent.name == "findings":
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name == "Finding" or (
                name == "replace" and any(k.arg == "id" for k in node.keywords)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_catalogue_refs_are_known_issues() -> None:
    issues = known_issues()
    refs = {r for info in CATALOGUE.values() for r in info.refs}
    assert refs and refs <= set(issues)
    for issue in issues.values():
        assert all(getattr(issue, k) for k in ("title", "component", "fixed", "source"))


def test_every_entry_has_its_docs_prose() -> None:
    for fid, info in CATALOGUE.items():
        assert ID.fullmatch(fid), fid
        assert info.summary and info.explanation and info.meaning, fid


def test_findings_doc_is_generated_from_the_catalogue() -> None:
    doc = (ROOT / "docs" / "findings.md").read_text()
    assert doc == render(), "docs/findings.md is stale: run `make docs`"
    rows = re.findall(r"^\| `([a-z0-9_.]+)` \| (\w+) \|.*\| ([^|]*) \|$", doc, re.M)
    assert [r[0] for r in rows] == list(CATALOGUE)
    for fid, severity, refs in rows:
        assert severity == CATALOGUE[fid].severity.label, fid
        assert tuple(re.findall(r"`([a-z0-9-]+)`", refs)) == CATALOGUE[fid].refs, fid
