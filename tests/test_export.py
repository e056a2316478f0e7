"""Evidence export, read back by the real tshark (Wireshark's dissector engine)."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

from netsleuth import craft
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from tests.capfiles import epb, idb, shb
from tests.clirun import invoke


def tshark_fields(tshark: str, path: Path, *fields: str) -> list[list[str]]:
    args = [tshark, "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def run(*args: str, code: int) -> tuple[str, str]:
    """stdout and stderr of `netsleuth ARGS`, which must end with exit `code` and no
    exception (tests/clirun.py)."""
    ran = invoke(*args, code=code)
    return ran.out, ran.err


def test_incident1_export_opens_in_tshark_with_comments(tmp_path: Path, tshark: str) -> None:
    cap = tmp_path / "incident1.pcap"
    frames = incidents.incident1_poison_fragment()
    with open(cap, "wb") as fh:
        write_pcap(fh, frames)
    out = tmp_path / "evidence.pcapng"
    stdout, _ = run(
        "scan",
        str(cap),
        "--only",
        "ipv4.fragment.*",
        "--export",
        str(out),
        "--format",
        "json",
        code=0,
    )
    assert json.loads(stdout)["export"] == {"path": str(out), "packets": 2}
    rows = tshark_fields(
        tshark, out, "frame.len", "frame.time_epoch", "ip.frag_offset", "frame.comment"
    )
    assert [r[0] for r in rows] == ["1480", "106"]
    # Original timestamps (ns resolution kept), the inner fragment offsets, the comments.
    assert [int(Decimal(r[1]) * 10**9) for r in rows] == [ts for ts, _ in frames[-2:]]
    # tshark 4.0 prints the raw 13-bit field (8-byte units): 175 * 8 = 1400.
    assert [r[2].split(",")[-1] for r in rows] == ["0", "175"]
    assert rows[1][3] == "netsleuth: incident1.pcap frame 22: ipv4.fragment.zero_length [inner]"
    assert rows[0][3] == (
        "netsleuth: incident1.pcap frame 21: fragment of a datagram flagged "
        "ipv4.fragment.zero_length"
    )


def test_context_and_link_types(tmp_path: Path, tshark: str) -> None:
    good = craft.ipv4("10.0.0.1", "10.0.0.2", craft.udp("10.0.0.1", "10.0.0.2", 1, 2), 17)
    bad = craft.ipv4("10.0.0.1", "10.0.0.2", b"", 17, checksum=0x1234)
    eth = [craft.ether(good, 0x0800) for _ in range(5)]
    eth[2] = craft.ether(bad, 0x0800)
    body = shb() + idb("<", 1) + idb("<", 101)
    body += b"".join(epb("<", 0, i, f) for i, f in enumerate(eth))
    body += epb("<", 1, 99, bad) + epb("<", 1, 100, good)
    cap = tmp_path / "mixed.pcapng"
    cap.write_bytes(body)
    out = tmp_path / "ev.pcapng"
    run(
        "scan",
        str(cap),
        "--only",
        "ipv4.bad_checksum",
        "--export",
        str(out),
        "--context",
        "1",
        code=0,
    )
    rows = tshark_fields(tshark, out, "frame.interface_id", "frame.protocols", "frame.comment")
    assert [r[1].split(":")[0] for r in rows] == ["eth", "eth", "eth", "eth", "raw", "raw"]
    comments = [r[2].removeprefix("netsleuth: mixed.pcapng ") for r in rows]
    assert comments == [
        "frame 2: context",
        "frame 3: ipv4.bad_checksum [outer]",
        "frame 4: context",
        "frame 5: context",  # before frame 6 in the file, though of another interface
        "frame 6: ipv4.bad_checksum [outer]",
        "frame 7: context",
    ]
    assert len({r[0] for r in rows}) == 2  # one interface block per link type


def test_export_refuses_stdin(tmp_path: Path) -> None:
    _, err = run("scan", "-", "--export", str(tmp_path / "x.pcapng"), code=2)
    assert "give capture files, not stdin" in err
