"""scan, steer and --export read captures through one pipeline: on a cut .gz capture they
report the same input record and the same capture.truncated_file (issue 14's drift: steer
said nothing of the cut, had empty link types and called a .gz uncompressed)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from tests.clirun import invoke


def cut_gz(tmp_path: Path) -> Path:
    raw = tmp_path / "i1.pcap"
    with open(raw, "wb") as fh:
        write_pcap(fh, list(incidents.incident1_poison_fragment()))
    packed = gzip.compress(raw.read_bytes())
    path = tmp_path / "i1.pcap.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])  # the stream ends early
    return path


def run(*args: str) -> Any:
    return invoke(*args, "--format", "json", code=0).json()


def test_scan_steer_and_export_say_the_same_of_a_cut_gz(tmp_path: Path) -> None:
    path = cut_gz(tmp_path)
    scan = run("scan", str(path), "--export", str(tmp_path / "ev.pcapng"))
    steer = run("steer", str(path))
    assert scan["inputs"] == steer["inputs"]
    [inp] = scan["inputs"]
    assert inp["compressed"] is True and inp["linktypes"] == {"1": inp["packets"]}
    assert 0 < inp["packets"] < 22

    def cut(doc: Any) -> list[Any]:
        return [f for f in doc["findings"] if f["id"] == "capture.truncated_file"]

    assert len(cut(scan)) == 1
    assert [f["summary"] for f in cut(steer)] == [f["summary"] for f in cut(scan)]
    assert (tmp_path / "ev.pcapng").exists()
