"""The JSON contract (README.md, "JSON"): every document starts with netsleuth, command,
findings."""

from __future__ import annotations

import json
from typing import Any

from netsleuth import __version__
from netsleuth.findings import Finding
from netsleuth.scan import ScanResult


def document(command: str, findings: list[Finding], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"netsleuth": __version__, "command": command}
    doc.update(extra)
    doc["findings"] = [f.to_json() for f in findings]
    return doc


def scan_document(result: ScanResult) -> dict[str, Any]:
    return document(
        "scan",
        result.findings,
        inputs=[i.to_json() for i in result.inputs],
        packets=result.packets,
        bytes=result.bytes,
        summary=result.summary.to_json(),
    )


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False)
