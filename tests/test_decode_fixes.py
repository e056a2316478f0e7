"""Review fixes of the decode work (issue 12): each test builds its frames or file here and
fails on the code before the fix."""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.decode import PacketTable, decode
from netsleuth.decode.table import ANOMALY_IDS, Tunnel
from tests import clirun
from tests import realframes as rf
from tests.capfiles import pcap_bytes

# A child's peak RSS, measured by a fresh interpreter that runs it (RUSAGE_CHILDREN of that
# interpreter sees only this one child, not the test run's earlier ones).
_PEAK = """
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(p.stderr)
sys.stdout.write(p.stdout)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(p.returncode)
"""


def _snoop_record(frame: bytes, rec_len: int | None = None) -> bytes:
    pad = bytes(-len(frame) % 4)
    length = 24 + len(frame) + len(pad) if rec_len is None else rec_len
    return struct.pack(">IIIIII", len(frame), len(frame), length, 0, 7, 5) + frame + pad


def test_hostile_snoop_record_length_is_read_past_without_holding_it(tmp_path: Path) -> None:
    """RFC 1761: a record is its 24-byte header, the included bytes and padding to 4 bytes.
    A record length of 4 GB over 256 MB of zeros (a 250 KB .gz) must not be read into
    memory: its padding is read past a piece at a time (wiretap/snoop.c skips padding of any
    length), the file ends inside it, and the record is lost as in tshark (a cut file)."""
    frame = craft.ether(rf.inner_udp(), 0x0800)
    head = b"snoop\0\0\0" + struct.pack(">II", 2, 4)
    path = tmp_path / "hostile.snoop.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(head + _snoop_record(frame) + _snoop_record(frame, rec_len=0xFFFFFFFF))
        zeros = bytes(1 << 20)
        for _ in range(256):
            f.write(zeros)
    scan = [sys.executable, "-m", "netsleuth", "scan", "--format", "json", str(path)]
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, *scan],
        capture_output=True,
        text=True,
        check=False,
    )
    peak_kb = int(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    found = {f["id"]: f for f in report["findings"]}
    assert found["capture.truncated_file"]["packets"] == [2]
    assert report["inputs"][0]["packets"] == 1
    # The scan itself needs ~100 MB; holding the padding would add its 256 MB.
    assert peak_kb < 200 * 1024, peak_kb


def test_snoop_padding_beyond_four_bytes_is_skipped(tmp_path: Path) -> None:
    """Padding of any length (writers that leave a trailer) is skipped, not taken as data;
    the file ending inside a record's padding ends inside that record (tshark reads it not
    either). 1,000 bytes of padding in the first record make the file Shomiti's: its
    frames end in their FCS (test_snoop.py), which leaves their bytes as they are."""
    from netsleuth.capture import open_capture

    frame = craft.ether(rf.inner_udp(), 0x0800)
    head = b"snoop\0\0\0" + struct.pack(">II", 2, 4)
    padded = _snoop_record(frame, 24 + len(frame) + 1000) + bytes(1000 - (-len(frame) % 4))
    path = tmp_path / "pad.snoop"
    path.write_bytes(head + padded + _snoop_record(frame) + _snoop_record(frame, 24 + 60 + 9000))
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert sum(len(b) for b in batches) == 2
    assert batches[0].packet(0) == frame and batches[0].packet(1) == frame
    assert [i.id for i in reader.issues] == ["capture.truncated_file"]


def _decode(frames: list[bytes]) -> PacketTable:
    return decode(RecordBatch.from_packets(frames, linktype=1))


def _anomalies(t: PacketTable) -> list[list[str]]:
    bits = t.anom_outer | t.anom_inner
    return [[name for a, name in ANOMALY_IDS.items() if int(b) >> int(a) & 1] for b in bits]


def test_ethernet_pseudowire_without_control_word() -> None:
    """RFC 4448 makes the control word optional; a frame without it whose destination MAC
    starts with nibble 0 (00:1b:21:..., Intel) was taken as control word + frame and
    decoded 4 bytes off (l2.bad_length, l2.ieee8023_llc). tshark (pwethheuristic) reads
    these as pwethnocw then eth:ip / eth:ipv6; the control-word frame as pwethcw."""
    _, nocw = rf.captures()["mpls-pw-nocw"]
    _, cw = rf.captures()["mpls-pw"]
    t = _decode(nocw + cw)
    assert _anomalies(t) == [[], [], []]
    assert [int(v) for v in t.outer.ver] == [4, 6, 4]
    assert [int(n) for n in t.mpls_n] == [1, 2, 1]
    # Ethernet, labels, (control word), inner Ethernet: where the inner IP header starts.
    assert [int(o) for o in t.outer.off] == [14 + 4 + 14, 14 + 8 + 14, 14 + 4 + 4 + 14]
    assert [int(d) for d in t.outer.dport] == [2, 2, 2]


def test_pseudowire_payload_that_is_no_ethernet_frame_ends_quietly() -> None:
    """Neither reading gives a decodable EtherType (an RFC 5586 associated channel, nibble
    1; a control word before junk): decoding stops after the labels, no anomaly."""
    ach = bytes.fromhex("10000021") + bytes(40)
    junk = bytes(4) + bytes(range(40))
    t = _decode([craft.ether(craft.mpls(p, [100]), 0x8847) for p in (ach, junk)])
    assert _anomalies(t) == [[], []]
    assert [int(v) for v in t.outer.ver] == [0, 0]
    assert [int(n) for n in t.mpls_n] == [1, 1]


def test_dns_replies_to_tunnel_ports_are_dns(tmp_path: Path) -> None:
    """8.8.8.8:53 -> client port 3544 (2152, 1701, ...) was decoded as the tunnel bound on
    the destination port and flagged (ip.bad_version, tunnel.bad_version, gre.bad_version,
    ...). tshark tries the lower port first and shows udp:dns; scapy reads the answer."""
    from scapy.layers.dns import DNS

    frames = rf.dns_replies()
    assert DNS(rf.dns_reply()).an[0].rdata == "192.0.2.80"
    t = _decode(frames)
    assert _anomalies(t) == [[]] * len(rf.TUNNEL_PORTS)
    assert t.tunnels.tolist() == [0] * len(rf.TUNNEL_PORTS)
    assert t.outer.dport.tolist() == list(rf.TUNNEL_PORTS)
    path = tmp_path / "dns.pcap"
    path.write_bytes(pcap_bytes([(1, k, f) for k, f in enumerate(frames)], linktype=1))
    shark = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.protocols"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shark.stdout.split() == ["eth:ethertype:ip:udp:dns"] * len(rf.TUNNEL_PORTS)
    report = clirun.run("scan", "--format", "json", str(path), code=0).json()
    assert [f["id"] for f in report["findings"]] == []
    assert report["summary"]["tunnels"] == {}


def test_payload_that_is_no_tunnel_header_is_not_flagged() -> None:
    """From an ephemeral port to a tunnel port, bytes that are no such header (a UDP port
    is a hint): no anomaly, no tunnel; the real tunnel frames beside them are decoded."""
    junk = bytes.fromhex("12348180") + bytes(40)
    frames = [
        craft.ether(craft.ipv4(rf.A, rf.B, craft.udp(rf.A, rf.B, 40000, p, junk), 17), 0x0800)
        for p in rf.TUNNEL_PORTS
    ]
    real = [f for name in ("teredo", "gtp-u", "l2tp", "vxlan-gpe") for f in rf.captures()[name][1]]
    t = _decode(frames + real)
    n = len(frames)
    assert _anomalies(t)[:n] == [[]] * n and t.tunnels[:n].tolist() == [0] * n
    assert _anomalies(t)[n:] == [[]] * len(real)
    kinds = [Tunnel(k).name for k in t.tunnel[n:]]
    assert kinds == ["TEREDO"] * 4 + ["GTPU"] * 3 + ["L2TP"] * 2 + ["VXLAN_GPE"] * 2


def test_an_arp_frame_too_short_for_its_lengths_ends_decoding_quietly() -> None:
    """ARP bounds its frame by its own lengths (a1c8cf7), which a frame cut within its first
    8 bytes does not give: it still ends there, with no finding, where it was sent back to
    the ARP decoder every round until decode.too_deep (helper-53). A whole one is bounded
    by its lengths: 8 + 2 x (6 + 4) = 28 bytes, the rest padding."""
    arp = bytes.fromhex("0001080006040001") + bytes(20)
    cut = craft.ether(arp[:6], 0x0806)
    whole = craft.pad(craft.ether(arp, 0x0806))
    t = decode(RecordBatch.from_packets([cut, whole], wirelen=[60, 60]))
    assert [int(a) for a in t.anom_outer] == [0, 0]
    assert int(t.wend[1] - t.start[1]) == 14 + 28
