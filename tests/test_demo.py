"""`netsleuth demo` run in-process with doctor's two live samples replaced by the host128
fixture (two readings 1 s apart): the JSON document's shape, key by key and in order, and the
text's sections. A change to either is a change to what users and scripts read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsleuth import __version__, doctor
from netsleuth.commands import demo
from netsleuth.sources.hostfs import read_snapshot

HOST128 = Path(__file__).parent / "fixtures" / "host128"
INCIDENTS = (
    "incident1-poison-fragment.pcap",
    "incident2-stp-llc.pcap",
    "incident3-pptp.pcap",
)
SCENARIOS = [
    "PPTP, outer-only NIC, Linux 4.9 RPS",
    "PPTP, outer-only NIC, Linux 4.10 RPS",
    "GRE v0, outer-only NIC",
    "GRE v0, inner-aware NIC",
]


@pytest.fixture(autouse=True)
def _fixed_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def samples(*_: object, **__: object) -> list[tuple[float, object]]:
        return [(100.0, read_snapshot(HOST128 / "t0")), (101.0, read_snapshot(HOST128 / "t1"))]

    monkeypatch.setattr(doctor, "take_samples", samples)


def _demo(tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> str:
    code = demo.execute(demo.Options(fmt, str(tmp_path / "keep"), None))
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return out


def test_demo_json_keeps_its_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(_demo(tmp_path, capsys, "json"))
    keep = tmp_path / "keep"
    assert list(doc) == ["netsleuth", "command", "scans", "steer", "doctor", "html", "findings"]
    assert (doc["netsleuth"], doc["command"], doc["findings"]) == (__version__, "demo", [])
    assert doc["html"] == str(keep / "netsleuth-demo.html")
    # Each scan is scan's own document (design.md's contract) with the incident's story last.
    for scan, name, (_, _, story) in zip(doc["scans"], INCIDENTS, demo.STORIES, strict=True):
        assert list(scan) == [
            "netsleuth",
            "command",
            "inputs",
            "packets",
            "bytes",
            "summary",
            "findings",
            "story",
        ]
        assert (scan["command"], scan["story"]) == ("scan", story)
        assert [i["path"] for i in scan["inputs"]] == [str(keep / name)]
    assert [row["scenario"] for row in doc["steer"]] == SCENARIOS
    for row in doc["steer"]:
        assert list(row) == [
            "scenario",
            "queues_busy",
            "queue_max_over_mean",
            "cpus_busy",
            "cpu_max_over_mean",
            "findings",
        ]
        assert row["findings"] == sorted(set(row["findings"]))
    gre_outer = doc["steer"][2]
    assert (gre_outer["cpus_busy"], gre_outer["cpu_max_over_mean"]) == (None, None)  # no RPS
    host = doc["doctor"]
    assert list(host) == ["findings", "rates", "notes"]
    assert list(host["rates"]) == ["seconds", "cpus", "devices", "queues"]
    assert host["rates"]["seconds"] == 1.0
    assert len(host["rates"]["cpus"]) == 128  # the fixture's 128 CPUs
    # generate.py: CPUs 0-3 hot in softirq (incident 3's picture).
    assert "host.softirq_hotspot" in [f["id"] for f in host["findings"]]


def test_demo_text_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich's width: no row or path cut to fit
    out = _demo(tmp_path, capsys, "text")
    keep = tmp_path / "keep"
    marks = [
        "Incident 1: a zero-payload IPv4 fragment",
        "scan incident1-poison-fragment.pcap:",
        "Incident 2: 802.3/LLC spanning-tree frames",
        "scan incident2-stp-llc.pcap:",
        "Incident 3: PPTP (GRE v1)",
        "scan incident3-pptp.pcap:",
        "Incident 3: where the receive load lands",
        "scenario",
        *SCENARIOS,
        "This machine's receive path",
        "netsleuth doctor: live, 2 sample(s) over 1.0 s",
        f"captures kept in {keep}\n",
        f"report: {keep / 'netsleuth-demo.html'} (open it in a browser; it works offline)\n",
    ]
    where = [out.find(m) for m in marks]
    assert -1 not in where, [m for m, w in zip(marks, where, strict=True) if w < 0]
    assert where == sorted(where)
    assert out.endswith(marks[-1])
    assert (keep / "netsleuth-demo.html").read_text().count("incident3-pptp.pcap") >= 1
