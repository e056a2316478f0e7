"""Every finding id the code can emit has a row in docs/findings.md, and vice versa."""

from __future__ import annotations

import re

from netsleuth.checks.catalogue import CATALOGUE
from netsleuth.decode.table import ANOMALY_IDS
from tests.conftest import ROOT


def test_every_id_is_documented_and_catalogued() -> None:
    doc = (ROOT / "docs" / "findings.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9_.]+)` \|", doc, re.M))
    emitted = set(ANOMALY_IDS.values()) | {
        "capture.truncated_file",
        "capture.corrupt_record",
        "capture.truncated_packet",
    }
    assert emitted <= set(CATALOGUE)
    assert documented == set(CATALOGUE)
