"""`listen`: /proc/net/tcp parsing (literal kernel format) and incident 3's arithmetic."""

from __future__ import annotations

from pathlib import Path

from netsleuth.host.listen import model
from netsleuth.sources.procnet import Listener, parse_tcp
from tests.clirun import invoke

# Lines as Linux prints them (net/ipv4/tcp_ipv4.c get_tcp4_sock; x86, little-endian words).
TCP4 = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23512 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19113 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:0016 0102000A:C350 01 00000000:00000000 02:0009E1E8 00000000     0        0 41219 4 0000000000000000 20 4 29 10 -1
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19115 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22011 1 0000000000000000 100 0 0 10 0
"""


def test_parse_literal_proc_net_tcp() -> None:
    four = parse_tcp(TCP4, byteorder="little")
    assert four == [Listener("127.0.0.1", 3306, 23512), Listener("0.0.0.0", 22, 19113)]
    six = parse_tcp(TCP6, byteorder="little")
    assert six == [Listener("::", 22, 19115), Listener("::1", 631, 22011)]


def test_incident_3_arithmetic() -> None:
    # 5000 ports x 50 SO_REUSEPORT workers: 250000 sockets / 32 buckets ~ 7800 per SYN.
    sockets = [Listener("0.0.0.0", 20000 + p, 0) for p in range(5000) for _ in range(50)]
    old = model(sockets, (4, 9))
    assert old.per_syn_old == 7812.6 and old.per_syn_running == 7812.6
    assert sum(old.buckets) == 250_000 and len(old.buckets) == 32
    assert old.per_syn_new < 3
    assert model(sockets, (5, 4)).per_syn_running == old.per_syn_new
    # 4.17-4.20: lhash2 only for buckets over 10 sockets: every bucket here.
    assert model(sockets, (4, 19)).per_syn_running == old.per_syn_new


def test_listen_command_on_a_generated_root(tmp_path: Path) -> None:
    lines = [TCP4.splitlines()[0]]
    sl = 0
    for p in range(1024):
        for _ in range(50):
            lines.append(
                f"{sl:4d}: 00000000:{20000 + p:04X} 00000000:0000 0A 00000000:00000000 "
                f"00:00000000 00000000     0        0 {100000 + sl} 1 0 100 0 0 10 0"
            )
            sl += 1
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "tcp").write_text("\n".join(lines) + "\n")
    root = ("--root", str(tmp_path))
    res = invoke(
        "listen", *root, "--kernel", "4.9", "--format", "json", "--fail-on", "warning", code=1
    )
    doc = res.json()  # exit 1: the finding is a warning
    # 1024 ports spread evenly over 32 buckets: 32 ports x 50 sockets walked per SYN.
    assert doc["model"]["sockets"] == 51_200 and doc["model"]["per_syn_old"] == 1600.0
    [f] = doc["findings"]
    assert f["id"] == "host.listen_hash_hotspot" and f["refs"] == ["linux-listen-hash-32"]
    assert "~1,600 sockets walked per SYN under Linux 4.9" in f["summary"]
    assert "tcp6 is absent" in res.err
    new = invoke("listen", *root, "--kernel", "5.10", "--format", "json", code=0)
    assert new.json()["findings"] == []
    empty = invoke("listen", "--root", str(tmp_path / "nothing"), code=2)
    assert empty.err_lines()[-1].endswith("no proc/net/tcp or tcp6 here: is --root a Linux root?")
