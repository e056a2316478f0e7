"""tcpdump's own test captures: a robustness corpus (830 files, ~230 crash regressions) and,
for the tunnel captures, a peer oracle (tcpdump's expected output, `*.out`)."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest

from netsleuth.capture import open_capture
from netsleuth.decode import PacketTable, decode
from tests.childrun import run
from tests.decodeutil import addr, ports


@pytest.mark.slow
def test_every_corpus_capture_scans_without_crash_hang_or_bloat(corpus: Path) -> None:
    files = sorted(str(p) for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert len(files) >= 800
    # Measured by childrun's launcher: RUSAGE_CHILDREN of this process would count any
    # earlier child forked from pytest with pytest's own pages (a 600 MB fixture builder).
    r = run("scan", "--format", "json", *files, timeout=600)
    err = r.err.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-2000:]
    doc = json.loads(r.out)
    assert doc["command"] == "scan" and len(doc["inputs"]) == len(files)
    failed = [i for i in doc["inputs"] if i["error"]]
    # Each unusable input is named on one stderr line, and the run exits 2 because of it.
    assert r.code == (2 if failed else 0)
    assert len(err.strip().splitlines()) == len(failed)
    for i in failed:
        assert i["error"].startswith(i["path"] + ": ")
    assert doc["packets"] > 10_000  # the corpus holds 10 183 records
    assert r.peak_mb < 300  # bounded memory whatever the input


FRAME_START = re.compile(r"^\s*(\d+)\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ ", re.M)
V4 = r"(\d{1,3}(?:\.\d{1,3}){3})(?:\.(\d+))?"
V6 = r"([0-9a-f]*:[0-9a-f:]+)(?:\.(\d+))?"
PAIR = re.compile(rf"(?:{V4} > {V4}|{V6} > {V6})[:,]")


def tcpdump_innermost(out: Path) -> dict[int, tuple[str, str, int | None, int | None]]:
    """Frame number -> the last address pair tcpdump printed for it (the innermost)."""
    text = out.read_text(errors="replace")
    starts = list(FRAME_START.finditer(text))
    res = {}
    for m, nxt in zip(starts, [*starts[1:], None], strict=True):
        body = text[m.start() : nxt.start() if nxt else len(text)]
        for g in reversed(PAIR.findall(body)):
            src, sp, dst, dp = (g[0], g[1], g[2], g[3]) if g[0] else (g[4], g[5], g[6], g[7])
            try:  # with -e, MAC pairs ("00:30:88:01:00:02 > ...") match the IPv6 pattern too
                a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
            except ValueError:
                continue
            res[int(m.group(1))] = (
                str(a),
                str(b),
                int(sp) if sp else None,
                int(dp) if dp else None,
            )
            break
    return res


TUNNEL_CASES = [
    ("pptp.pcap", "pptp.out"),
    ("various_gre.pcap", "various_gre.out"),
    ("vxlan.pcap", "vxlan.out"),
    ("vxlan_port_8472.pcap", "vxlan_port_8472.out"),
    ("geneve.pcap", "geneve-vv.out"),
    ("geneve-gcp.pcap", "geneve-gcp.out"),
    ("wccp_redirect_gre.pcap", "wccp_redirect_gre.out"),
    *[
        (f"erspan-type-{k}.pcap", f"erspan-type-{k}.out")
        for k in (
            "i-1",
            "i-2",
            "i-3",
            "i-4",
            "ii-1",
            "ii-2",
            "ii-3",
            "iii-ft-0",
            "iii-ft-7",
            "iii-pb-1",
        )
    ],
    *[
        (f"{k}.pcap", f"{k}.out")
        for k in (
            "gso-ipv4-vxlan-ipv4",
            "gso-ipv4-vxlan-ipv6",
            "gso-ipv6-vxlan-ipv4",
            "gso-ipv6-geneve-ipv6",
            "bigtcp-ipv4-vxlan-ipv4",
            "bigtcp-ipv6-geneve-ipv6",
        )
    ],
]


# Link types whose header tcpdump decodes and tshark 4.0 does not (the DSA switch tags) or
# does too (IP over InfiniBand): the packet behind each header is tcpdump's.
LINK_CASES = [
    (f"{k}.pcap", f"{k}.out")
    for k in (
        "dsa",
        "dsa-high-vid",
        "edsa",
        "edsa-high-vid",
        "brcm-tag",
        "brcm-tag-prepend",
        "ipoib",
        "LINKTYPE_PKTAP",
        "LINKTYPE_USER2_PKTAP",
    )
] + [
    # tcpdump's corpus has these only as printed with -e (link headers first)
    (f"{k}.pcap", f"{k}-e.out")
    for k in ("arcnet-rfc1051-arp-icmp-http", "arcnet-rfc1201-arp-icmp-http")
]


def ours(t: PacketTable, i: int) -> tuple[str, str, int | None, int | None]:
    layer = t.inner
    src, dst = addr(layer, i)
    has_ports = int(layer.l4_off[i]) != 0 and int(layer.proto[i]) in (6, 17)
    sp, dp = ports(layer, i)
    return (src, dst, sp if has_ports else None, dp if has_ports else None)


def tcpdump_unknown_gre(out: Path) -> set[int]:
    """Frames whose GRE payload tcpdump does not decode ("gre-proto-0x8909", Cisco MetaData):
    it prints the outer pair; netsleuth, like tshark, reaches the inner one (those frames
    are held to tshark in test_tshark_diff.py)."""
    text = out.read_text(errors="replace")
    starts = list(FRAME_START.finditer(text))
    return {
        int(m.group(1))
        for m, nxt in zip(starts, [*starts[1:], None], strict=True)
        if "gre-proto-0x" in text[m.start() : nxt.start() if nxt else len(text)]
    }


@pytest.mark.parametrize(("capture", "expected"), TUNNEL_CASES + LINK_CASES)
def test_inner_addresses_and_ports_match_tcpdump(corpus: Path, capture: str, expected: str) -> None:
    want = tcpdump_innermost(corpus / expected)
    for frame in tcpdump_unknown_gre(corpus / expected):
        want.pop(frame, None)
    assert want, f"no address pairs parsed from {expected}"
    got = {}
    for batch in open_capture(str(corpus / capture)).batches():
        t = decode(batch)
        for i in range(t.n):
            if int(t.inner.ver[i]):
                got[int(t.frame[i])] = ours(t, i)
    mismatched = {f: (want[f], got.get(f)) for f in want if got.get(f) != want[f]}
    assert mismatched == {}
    assert len(got) >= len(want)
