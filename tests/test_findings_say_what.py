"""Findings that say what they saw: EtherTypes by name, BPDUs by protocol version, an
802.3 length past the frame named as such, PPTP inside another tunnel on the inner layer,
every tunnel level in the summary, and a zero checksum on a packet the capturing host sent
called checksum offload. Frames are built here; tshark cross-checks the builds."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from netsleuth import craft
from netsleuth.capture import RecordBatch
from netsleuth.capture.writer import write_pcap
from netsleuth.checks import collect, new_checks, observe_all
from netsleuth.craft.l2 import ieee8023
from netsleuth.decode import decode
from netsleuth.findings import Finding, Severity
from netsleuth.scan import scan
from tests.checkutil import findings

S, D = "192.0.2.1", "198.51.100.7"


def unknown_types() -> list[bytes]:
    return [
        craft.ether(bytes(46), 0x88CC),  # LLDP
        craft.ether(bytes(46), 0x88CC),
        craft.ether(bytes(46), 0x888E),  # EAPOL
        craft.ether(bytes(46), 0x1234),  # nobody's
    ]


def test_unknown_ethertypes_are_named_with_counts() -> None:
    f = findings(unknown_types())["l2.unknown_ethertype/outer"]
    assert f.count == 4
    assert f.packets == (1, 2, 3, 4)
    assert f.summary.endswith(
        ": LLDP (0x88cc) x2, 0x1234 (unregistered here) x1, 802.1X (EAPOL) (0x888e) x1"
    )
    assert f.evidence["ethertypes"] == [
        {"ethertype": 0x88CC, "name": "LLDP", "count": 2},
        {"ethertype": 0x1234, "name": None, "count": 1},
        {"ethertype": 0x888E, "name": "802.1X (EAPOL)", "count": 1},
    ]


def test_thousands_of_ethertypes_are_named_up_to_a_few_and_the_rest_counted() -> None:
    # 70 unregistered EtherTypes 0x3000-0x3045, the k-th seen 70 - k times: random bytes
    # on a link look like this (60,000 kinds in 200k frames once made a 4.8 MB finding).
    frames = [craft.ether(bytes(46), 0x3000 + k) for k in range(70) for _ in range(70 - k)]
    f = findings(frames)["l2.unknown_ethertype/outer"]
    assert f.count == 70 * 71 // 2
    named = ", ".join(f"0x{0x3000 + k:04x} (unregistered here) x{70 - k}" for k in range(8))
    rest = sum(70 - k for k in range(8, 70))
    assert f.summary.endswith(f": {named}, and 62 other EtherTypes x{rest:,}")
    listed = f.evidence["ethertypes"]
    assert [e["ethertype"] for e in listed] == [0x3000 + k for k in range(64)]
    assert f.evidence["other_ethertypes"] == {"kinds": 6, "count": sum(range(1, 7))}


def bpdu(version: int) -> bytes:
    return craft.pad(ieee8023(craft.llc(craft.stp_bpdu(version=version), dsap=0x42, ssap=0x42)))


def test_bpdus_named_by_protocol_version() -> None:
    frames = [bpdu(0), bpdu(2), bpdu(2), bpdu(3), bpdu(7)]
    f = findings(frames)["l2.ieee8023_llc/outer"]
    assert f.evidence["kinds"] == {
        "BPDU version 7 (SAP 0x42)": 1,
        "MSTP BPDU (SAP 0x42)": 1,
        "RSTP BPDU (SAP 0x42)": 2,
        "STP BPDU (SAP 0x42)": 1,
    }


def test_an_8023_length_past_the_frame_is_named_not_a_negative_sap() -> None:
    frame = ieee8023(craft.llc(bytes(43), dsap=0x42, ssap=0x42), length=1400)
    got = findings([frame])
    assert got["l2.bad_length/outer"].packets == (1,)
    kinds = got["l2.ieee8023_llc/outer"].evidence["kinds"]
    assert "SAP -0x1" not in kinds
    assert kinds == {"no LLC header (802.3 length past the frame end, or cut short)": 1}


def pptp_in_4in6() -> bytes:
    ppp = craft.ppp(craft.ipv4("10.0.0.1", "10.0.0.2", bytes(8), 17), 0x0021)
    gre_ip = craft.ipv4(S, D, craft.gre_pptp(ppp, call_id=5, seq=1), 47)
    return craft.ether(craft.ipv6("2001:db8::1", "2001:db8::2", gre_ip, 4), 0x86DD)


def test_pptp_inside_4in6_is_on_the_inner_layer_and_both_levels_are_counted(
    tmp_path: Path,
) -> None:
    got = findings([pptp_in_4in6()])
    assert got["gre.v1_pptp/inner"].packets == (1,)
    assert "gre.v1_pptp/outer" not in got
    path = tmp_path / "p.pcap"
    with open(path, "wb") as fh:
        write_pcap(fh, [(0, pptp_in_4in6())])
    assert scan([str(path)]).summary.to_json()["tunnels"] == {"4in6": 1, "pptp": 1}


def sll(pkttype: int, payload: bytes, proto: int = 0x0800) -> bytes:
    # LINKTYPE_LINUX_SLL: packet type, ARPHRD, address length, 8 address bytes, protocol.
    return struct.pack("!HHH8sH", pkttype, 1, 6, bytes(8), proto) + payload


def test_zero_header_checksum_on_a_packet_linux_sent_is_still_bad() -> None:
    # Linux fills the IPv4 header checksum in software (__ip_local_out -> ip_send_check)
    # before any capture point: zero on an outgoing packet is no offload artefact.
    zero = craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x"), 17, checksum=0)
    good = craft.ipv4(S, D, craft.udp(S, D, 1, 2, b"x"), 17)
    frames = [sll(4, zero), sll(0, zero), sll(4, good)]  # 4 PACKET_OUTGOING, 0 HOST
    t = decode(RecordBatch.from_packets(frames, linktype=113))
    got: dict[str, Finding] = {}
    checks = new_checks()
    observe_all(checks, t)
    for f in collect(checks):
        got[f.id] = f
    assert got["ipv4.bad_checksum"].packets == (1, 2)
    assert got["ipv4.bad_checksum"].severity == Severity.WARNING


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_the_builds_alike(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    frames = [*unknown_types(), bpdu(0), bpdu(3), pptp_in_4in6()]
    with open(path, "wb") as fh:
        write_pcap(fh, [(i, f) for i, f in enumerate(frames)])
    cols = ["-e", "eth.type", "-e", "stp.version", "-e", "gre.flags.version"]
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", *cols],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    rows = [line.split("\t") for line in out]
    assert [r[0] for r in rows[:4]] == ["0x88cc", "0x88cc", "0x888e", "0x1234"]
    assert [rows[4][1], rows[5][1]] == ["0", "3"]
    assert rows[6][2] == "1"
