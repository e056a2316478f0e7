"""The command line: JSON contract, exit codes, stdin, many inputs, the demo."""

from __future__ import annotations

import json
from pathlib import Path

from netsleuth import __version__
from netsleuth.craft import incidents
from tests import clirun
from tests.capfiles import pcap_bytes
from tests.clirun import invoke


def write(path: Path, frames: list[tuple[int, bytes]]) -> Path:
    path.write_bytes(pcap_bytes([(ts // 10**9, ts % 10**9 // 1000, f) for ts, f in frames]))
    return path


def run(*args: str, code: int) -> tuple[str, str]:
    """stdout and stderr of `netsleuth ARGS`, which must end with exit `code` and no
    exception (tests/clirun.py)."""
    ran = invoke(*args, code=code)
    return ran.out, ran.err


def test_scan_json_contract(tmp_path: Path) -> None:
    cap = write(tmp_path / "pptp.pcap", incidents.incident3_pptp(flows=50))
    out, _ = run("scan", "--format", "json", str(cap), code=0)
    doc = json.loads(out)
    assert list(doc)[:2] == ["netsleuth", "command"]
    assert doc["netsleuth"] == __version__ and doc["command"] == "scan"
    assert doc["packets"] == 100 and doc["inputs"][0]["packets"] == 100
    assert doc["inputs"][0] == {
        **doc["inputs"][0],
        "format": "pcap",
        "error": None,
        "linktypes": {"1": 100},
    }
    assert doc["summary"]["tunnels"] == {"pptp": 100}
    [pptp] = doc["findings"]
    assert (pptp["id"], pptp["severity"], pptp["count"], pptp["layer"]) == (
        "gre.v1_pptp",
        "info",
        100,
        "outer",
    )
    assert pptp["refs"] == ["linux-flow-dissector-gre-v1"]
    assert pptp["packets"][:3] == [1, 2, 3] and pptp["input"] == str(cap)


def test_unusable_input_is_reported_and_others_still_scanned(tmp_path: Path) -> None:
    good = write(tmp_path / "ok.pcap", incidents.incident2_stp_llc(seconds=2))
    bad = tmp_path / "notes.txt"
    bad.write_text("hello world\n")
    out, err = run("scan", "--format", "json", str(bad), str(good), code=2)
    assert (
        err.strip() == f"netsleuth: {bad}: not a capture file: it starts with text "
        "'hello world\\\\n' (68 65 6c 6c 6f 20 77 6f), not pcap/pcapng magic or ERF records"
    )
    doc = json.loads(out)
    assert [i["packets"] for i in doc["inputs"]] == [0, 11]
    assert doc["inputs"][0]["error"].startswith(f"{bad}: not a capture file")


def test_truncated_file_is_a_finding_not_an_error(tmp_path: Path) -> None:
    cap = write(tmp_path / "cut.pcap", incidents.incident2_stp_llc(seconds=2))
    cap.write_bytes(cap.read_bytes()[:-5])
    out, _ = run("scan", "--format", "json", str(cap), code=0)
    doc = json.loads(out)
    [f] = [f for f in doc["findings"] if f["id"] == "capture.truncated_file"]
    assert f["packets"] == [11] and doc["packets"] == 10


def test_fail_on_threshold(tmp_path: Path) -> None:
    frames = [
        (0, bytes.fromhex("020000000002020000000001 0800 44000014".replace(" ", "")) + bytes(60))
    ]
    cap = write(tmp_path / "ihl.pcap", frames)
    run("scan", str(cap), code=0)
    run("scan", "--fail-on", "critical", str(cap), code=0)
    out, _ = run("scan", "--fail-on", "warning", "--format", "json", str(cap), code=1)
    ids = [f["id"] for f in json.loads(out)["findings"]]
    assert ids == ["ipv4.bad_header_length"]


def test_text_output_names_findings_and_frames(tmp_path: Path) -> None:
    frames = [
        (0, bytes.fromhex("020000000002020000000001 0800 44000014".replace(" ", "")) + bytes(60))
    ]
    cap = write(tmp_path / "ihl.pcap", frames)
    out, _ = run("scan", str(cap), code=0)
    assert "WARNING (1)" in out and "ipv4.bad_header_length [outer]" in out
    assert "frames: 1" in out


def test_stdin_and_missing_file(tmp_path: Path) -> None:
    cap = write(tmp_path / "x.pcap", incidents.incident2_stp_llc(seconds=2))
    doc = clirun.run("scan", "--format", "json", "-", input=cap.read_bytes(), code=0).json()
    assert doc["inputs"][0] == {
        "path": "-",
        "format": "pcap",
        "compressed": False,
        "packets": 11,
        "bytes": doc["bytes"],
        "linktypes": {"1": 11},
        "error": None,
    }
    _, err = run("scan", str(tmp_path / "nope.pcap"), code=2)
    assert err.strip() == f"netsleuth: {tmp_path / 'nope.pcap'}: No such file or directory"


def test_bad_arguments_exit_2() -> None:
    run("scan", code=2)
    run("scan", "--format", "xml", "x", code=2)


def test_demo_scans_the_three_incidents(tmp_path: Path) -> None:
    out, _ = run("demo", "--format", "json", "--keep", str(tmp_path), code=0)
    doc = json.loads(out)
    assert doc["command"] == "demo"
    scans = doc["scans"]
    assert [s["inputs"][0]["path"].rsplit("/", 1)[1] for s in scans] == [
        "incident1-poison-fragment.pcap",
        "incident2-stp-llc.pcap",
        "incident3-pptp.pcap",
    ]
    assert scans[0]["summary"]["tunnels"] == {"gre-teb": 22}
    assert scans[0]["summary"]["fragments"] == 2
    assert scans[1]["summary"]["l3"]["802.2-llc"] == 10
    assert scans[2]["summary"]["tunnels"] == {"pptp": 4000}
    assert (tmp_path / "incident1-poison-fragment.pcap").stat().st_size > 0
    assert doc["html"] == str(tmp_path / "netsleuth-demo.html")  # the demo's report
    assert "incident3-pptp.pcap" in Path(doc["html"]).read_text()
    story = {row["scenario"]: row for row in doc["steer"]}
    old = story["PPTP, outer-only NIC, Linux 4.9 RPS"]
    new = story["PPTP, outer-only NIC, Linux 4.10 RPS"]
    assert (old["cpus_busy"], new["cpus_busy"]) == (1, 8)
    assert story["GRE v0, outer-only NIC"]["queues_busy"] == 1
    assert story["GRE v0, inner-aware NIC"]["queues_busy"] == 8
    # And doctor on this machine: two samples of the real receive path, rates for every CPU.
    cpus = len(Path("/proc/net/softnet_stat").read_text().splitlines())
    assert len(doc["doctor"]["rates"]["cpus"]) == cpus
    assert "lo" in doc["doctor"]["rates"]["devices"]


def test_live_options_with_capture_files_are_refused(tmp_path: Path) -> None:
    """--filter, --rotate and the other --live options would be ignored on capture files (a
    filter the user thinks applied): one line, exit 2. --workers serves both."""
    cap = write(tmp_path / "i1.pcap", incidents.incident1_poison_fragment())
    for option, given in (
        ("--filter", ["--filter", "tcp"]),
        ("--encap", ["--encap", "vlan"]),
        ("--promisc", ["--promisc"]),
        ("--interval", ["--interval", "1.0"]),  # given, even at its default
        ("--rotate", ["--export", str(tmp_path / "e.pcapng"), "--rotate", "10MB"]),
    ):
        ran = invoke("scan", *given, str(cap), code=2)
        assert ran.err_lines() == [
            f"netsleuth: {option}: goes with --live IFACE, not capture files"
        ]
    assert not (tmp_path / "e.pcapng").exists()
    assert invoke("scan", "--workers", "2", "--format", "json", str(cap)).json()["inputs"]
