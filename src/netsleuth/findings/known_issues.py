"""The known-issues catalogue (known_issues.json, beside this module): what findings'
`refs` point to (catalogue.FindingInfo.refs; a test holds every ref to an entry here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

FIELDS = (
    "id",
    "title",
    "component",
    "affected",
    "fixed",
    "upstream",
    "breaks",
    "mitigation",
    "source",
)


@dataclass(frozen=True, slots=True)
class KnownIssue:
    id: str
    title: str
    component: str
    affected: str
    fixed: str
    upstream: str
    breaks: str
    mitigation: str
    source: str


@cache
def known_issues() -> dict[str, KnownIssue]:
    from importlib import resources  # 9 ms of start-up: only when a report needs it

    text = resources.files("netsleuth.findings").joinpath("known_issues.json").read_text()
    doc = json.loads(text)
    return {e["id"]: KnownIssue(**{k: e[k] for k in FIELDS}) for e in doc["issues"]}
