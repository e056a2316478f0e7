"""The known-issues catalogue (data/known_issues.json): what findings' `refs` point to."""

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

    text = resources.files("netsleuth").joinpath("data/known_issues.json").read_text()
    doc = json.loads(text)
    return {e["id"]: KnownIssue(**{k: e[k] for k in FIELDS}) for e in doc["issues"]}
