"""The pcap variants whose record headers carry more than libpcap's 16 bytes (Red Hat 6.1,
SuSE 6.3, Nokia, the modified magic: wiretap/libpcap.h), written by Wireshark's own editcap
from a libpcap file: read packet for packet as the original. Two of them share libpcap's
magic and are told apart by their first records, as Wireshark does; read as libpcap files
they gave 3 packets, a 4 GB byte count and a corrupt record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from netsleuth.capture import open_capture
from netsleuth.capture.pcap import PcapReader
from netsleuth.capture.split import layout
from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.craft.mix import mixed_capture
from netsleuth.report.jsonout import scan_document
from netsleuth.scan import scan
from tests.systools import require

# editcap -F name: the record header's size (wiretap/libpcap.h: pcaprec_modified_hdr,
# pcaprec_nokia_hdr, pcaprec_ss990915_hdr).
VARIANTS = {"rh6_1pcap": 24, "nokiapcap": 20, "modpcap": 24, "suse6_3pcap": 28}


def original(tmp_path: Path) -> tuple[Path, int]:
    """A microsecond libpcap file of incident 1 and a slice of the bench mix."""
    frames = [*incidents.incident1_poison_fragment(normal=200), *mixed_capture(600, seed=9)]
    path = tmp_path / "original.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, frames)
    return path, len(frames)


def document(path: Path) -> str:
    """scan's JSON of a file, without what names the file."""
    doc = scan_document(scan([str(path)]))
    for part in doc["inputs"]:
        part.pop("path")
    for f in doc["findings"]:
        f.pop("input")
    return json.dumps(doc, sort_keys=True)


@pytest.mark.parametrize("fmt", sorted(VARIANTS))
def test_a_variant_reads_as_the_libpcap_original(fmt: str, tmp_path: Path) -> None:
    editcap = require("editcap", "tshark")
    src, n = original(tmp_path)
    out = tmp_path / f"variant.{fmt}"
    subprocess.run([editcap, "-F", fmt, str(src), str(out)], check=True, capture_output=True)
    grown = VARIANTS[fmt] - 16
    assert out.stat().st_size == src.stat().st_size + n * grown  # longer headers, really
    reader = open_capture(str(out))
    reader.source.close()
    assert isinstance(reader, PcapReader) and reader.record == VARIANTS[fmt]
    want = document(src)
    assert f'"packets": {n},' in want
    assert document(out) == want
    assert layout(str(out)) is None  # no record resync in longer headers: read whole
    assert layout(str(src)) is not None


def test_a_cut_variant_reads_up_to_the_cut_as_tshark_does(tmp_path: Path) -> None:
    editcap = require("editcap", "tshark")
    tshark = require("tshark", "tshark")
    src, _ = original(tmp_path)
    whole = tmp_path / "variant.rh6_1pcap"
    subprocess.run([editcap, "-F", "rh6_1pcap", str(src), str(whole)], check=True)
    cut = tmp_path / "cut.rh6_1pcap"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 3 // 5])
    frames = subprocess.run(
        [tshark, "-r", str(cut), "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=False,  # tshark exits 2 on the cut record, after the frames before it
    ).stdout.split()
    doc = scan_document(scan([str(cut)]))
    assert doc["inputs"][0]["packets"] == len(frames) > 100
    assert "capture.truncated_file" in {f["id"] for f in doc["findings"]}
