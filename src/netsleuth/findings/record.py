"""The record schema shared by every command: findings and severities (README.md,
"JSON"). Frozen dataclasses; rendering lives in netsleuth.report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

MAX_FRAMES = 100  # frame numbers listed per finding; `count` is always the total


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (info, warning, critical)") from None


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    severity: Severity
    count: int
    summary: str
    explanation: str
    packets: tuple[int, ...] = ()
    layer: str | None = None  # "outer", "inner" (inside a tunnel), or None
    refs: tuple[str, ...] = ()
    input: str | None = None  # the capture it came from, for multi-input scans
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity.label,
            "count": self.count,
            "packets": list(self.packets),
            "layer": self.layer,
            "summary": self.summary,
            "explanation": self.explanation,
            "refs": list(self.refs),
        }
        if self.input is not None:
            out["input"] = self.input
        if self.evidence:
            out["evidence"] = self.evidence
        return out
