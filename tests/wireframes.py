"""Frames and scan documents the capture-format tests share (ERF, snoop): what a DAG
card on a switch port sees, scan's JSON of a file without what names it, and tshark's
fields for a file, the independent oracle."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from netsleuth.craft.l2 import dot1q, ether, ieee8023, llc, pad, stp_bpdu
from netsleuth.craft.l3 import ipv4
from netsleuth.craft.l4 import tcp, udp
from netsleuth.report.jsonout import scan_document
from netsleuth.scan import scan


def document(path: Path, *, wire: int | None = None) -> str:
    """scan's JSON of a file, without what names the file or its format. `wire`: the
    bytes the capture records, FCSs included, which its byte counts must be and which
    are then left out too (a pcap file of the same frames holds none)."""
    doc = scan_document(scan([str(path)]))
    for part in doc["inputs"]:
        part.pop("path")
        part.pop("format")
    for f in doc["findings"]:
        f.pop("input")
    if wire is not None:
        assert doc.pop("bytes") == wire == doc["inputs"][0].pop("bytes")
        doc["inputs"][0]["bytes"] = doc["bytes"] = None
    return json.dumps(doc, sort_keys=True)


def without_bytes(path: Path) -> str:
    """document() with its byte counts left out."""
    doc = json.loads(document(path))
    doc["inputs"][0]["bytes"] = doc["bytes"] = None
    return json.dumps(doc, sort_keys=True)


def tshark_frames(tshark: str, path: Path, *fields: str, check: bool = False) -> list[list[str]]:
    """tshark's `fields` of each frame of `path`, the first occurrence of each. `check`:
    tshark must exit 0 (left False where a cut or refused file is the test's: tshark then
    prints the frames it read and exits 2)."""
    cmd = [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "separator=|", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=check).stdout
    return [line.split("|") for line in out.splitlines()]


def udp4(src: str, payload: bytes = b"x" * 12) -> bytes:
    return ipv4(src, "192.0.2.99", udp(src, "192.0.2.99", 4000, 53, payload), 17)


def udp_frame(src: str, payload: bytes = b"x" * 12, *, fill: int = 0) -> bytes:
    return pad(ether(udp4(src, payload), 0x0800), fill=fill)


def wire_frames() -> list[bytes]:
    """What a DAG card on a switch port sees: minimum-size frames (60 bytes and the FCS:
    64 on the wire) of UDP and of incident 2's 802.3/LLC spanning tree, one padded with
    non-zero bytes (Etherleak), a VLAN-tagged one, a full-size TCP segment and ARP."""
    bridge = b"\x80\x00" + bytes.fromhex("00259ec0ffee")
    bpdu = stp_bpdu(version=2, bpdu_type=0x02, root=bridge, bridge=bridge)
    data = bytes(range(256)) * 5 + b"z" * 180
    seg = tcp("198.51.100.5", "192.0.2.99", 22, 50000, data, flags="PA")
    return [
        udp_frame("198.51.100.1"),
        pad(ieee8023(llc(bpdu, dsap=0x42, ssap=0x42), src="00:25:9e:c0:ff:ee")),
        udp_frame("198.51.100.3", fill=0xAB),
        pad(ether(dot1q(udp4("198.51.100.4"), 0x0800, vid=7), 0x8100)),
        ether(ipv4("198.51.100.5", "192.0.2.99", seg, 6), 0x0800),
        pad(ether(bytes.fromhex("0001080006040001") + bytes(20), 0x0806)),
    ]
