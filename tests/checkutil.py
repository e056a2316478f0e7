"""Run every registered check over in-memory frames."""

from __future__ import annotations

from netsleuth.capture import RecordBatch
from netsleuth.checks import new_checks
from netsleuth.decode import decode
from netsleuth.model import Finding


def findings(frames: list[bytes], *, wirelen: list[int] | None = None) -> dict[str, Finding]:
    checks = new_checks()
    t = decode(RecordBatch.from_packets(frames, wirelen=wirelen))
    for c in checks:
        c.observe(t)
    out: dict[str, Finding] = {}
    for c in checks:
        for f in c.findings():
            out[f"{f.id}/{f.layer}"] = f
    return out
