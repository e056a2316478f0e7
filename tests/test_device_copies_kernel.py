"""`dumpcap -i any` on a host whose address is on a bridge (a container or VM host): the real
kernel hands each received fragment to the capture twice, from the bridge port and from
the bridge, with one timestamp. scan takes each datagram once: no duplicate, too many or
incomplete fragments, and the copies counted as capture.device_copies. tshark says which
frames repeat an earlier one (timestamp, IP id, offset, checksum and length)."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.clirun import invoke
from tests.netns import veth_pair
from tests.systools import dumpcap_in, stop_dumpcap

pytestmark = pytest.mark.privileged

A_IP, B_IP = "10.79.0.1", "10.79.0.2"
DATAGRAMS = 12
SIZE = 3000  # three fragments at the veth's 1500-byte MTU


def repeats(tshark: str, path: Path) -> tuple[int, int]:
    """(received fragments, how many repeat an earlier one's timestamp and header)."""
    where = "sll.pkttype != 4 and (ip.flags.mf == 1 or ip.frag_offset > 0)"
    fields = ["frame.time_epoch", "ip.id", "ip.frag_offset", "ip.checksum", "ip.len"]
    argv = [tshark, "-n", "-r", str(path), "-Y", where, "-T", "fields"]
    argv += [a for f in fields for a in ("-e", f)]
    rows = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    seen = Counter(rows)
    return len(rows), sum(n - 1 for n in seen.values())


@pytest.mark.parametrize("linktype", ["LINUX_SLL", "LINUX_SLL2"])
def test_fragments_received_through_a_bridge(tmp_path: Path, tshark: str, linktype: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, a bridge and dumpcap")
    path = tmp_path / "any.pcapng"
    with veth_pair("dc", A_IP, B_IP, bridge=True) as pair:
        proc = dumpcap_in(pair.b, ["-i", "any", "-y", linktype], path)
        try:
            for k in range(DATAGRAMS):
                pair.udp.sendto(bytes([k]) * SIZE, (B_IP, 9999))
        finally:
            time.sleep(1)  # dumpcap reads the ring's blocks as they time out
            stop_dumpcap(proc)
    fragments, copies = repeats(tshark, path)
    assert fragments == 2 * 3 * DATAGRAMS and copies == 3 * DATAGRAMS  # port, then bridge

    doc = invoke("scan", "--format", "json", str(path)).json()  # exit 0: info findings only
    found = {f["id"]: f["count"] for f in doc["findings"]}
    assert found.get("capture.device_copies") == copies
    assert [fid for fid in found if fid.startswith("ipv4.fragment.")] == []
