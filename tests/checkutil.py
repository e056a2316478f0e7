"""Run every registered check over in-memory frames."""

from __future__ import annotations

from netsleuth.capture import RecordBatch
from netsleuth.checks import collect, new_checks, observe_all
from netsleuth.decode import decode
from netsleuth.findings import Finding


def findings(
    frames: list[bytes], *, wirelen: list[int] | None = None, linktype: int = 1
) -> dict[str, Finding]:
    checks = new_checks()
    t = decode(RecordBatch.from_packets(frames, wirelen=wirelen, linktype=linktype))
    observe_all(checks, t)
    return {f"{f.id}/{f.layer}": f for f in collect(checks)}
