"""Toeplitz RSS hash against Microsoft's RSS verification suite (also in Intel's 82599
datasheet section 7.1.2.8.3 and DPDK's app/test/test_thash.c)."""

from __future__ import annotations

import numpy as np
import pytest

from netsleuth.steering.toeplitz import MICROSOFT_KEY, SYMMETRIC_KEY, Toeplitz, rss_input
from tests.clirun import invoke

# (source, destination, sport, dport, hash of addresses, hash with ports)
IPV4 = [
    ("66.9.149.187", "161.142.100.80", 2794, 1766, 0x323E8FC2, 0x51CCC178),
    ("199.92.111.2", "65.69.140.83", 14230, 4739, 0xD718262A, 0xC626B0EA),
    ("24.19.198.95", "12.22.207.184", 12898, 38024, 0xD2D0A5DE, 0x5C2B394A),
    ("38.27.205.30", "209.142.163.6", 48228, 2217, 0x82989176, 0xAFC7327F),
    ("153.39.163.191", "202.188.127.2", 44251, 1303, 0x5D1809C5, 0x10E828A2),
]
IPV6 = [
    ("3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1", 2794, 1766, 0x2CC18CD5, 0x40207D3D),
    ("3ffe:501:8::260:97ff:fe40:efab", "ff02::1", 14230, 4739, 0x0F0C461C, 0xDDE51BBF),
    (
        "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
        "fe80::200:f8ff:fe21:67cf",
        44251,
        38024,
        0x4B61E985,
        0x02D1FEEF,
    ),
]


@pytest.mark.parametrize("vector", IPV4 + IPV6)
def test_microsoft_vectors(vector: tuple[str, str, int, int, int, int]) -> None:
    src, dst, sport, dport, l3, l4 = vector
    t = Toeplitz(MICROSOFT_KEY)
    assert t.hash(rss_input(src, dst)) == l3
    assert t.hash(rss_input(src, dst, sport, dport)) == l4


def test_vectorized_rows_equal_one_by_one() -> None:
    t = Toeplitz(MICROSOFT_KEY)
    rows = np.array([list(rss_input(s, d, sp, dp)) for s, d, sp, dp, _, _ in IPV4], dtype=np.uint8)
    assert [int(h) for h in t.hash_rows(rows)] == [v[5] for v in IPV4]


def test_symmetric_key_hashes_both_directions_alike() -> None:
    t = Toeplitz(SYMMETRIC_KEY)
    for s, d, sp, dp, _, _ in IPV4 + IPV6:
        assert t.hash(rss_input(s, d, sp, dp)) == t.hash(rss_input(d, s, dp, sp))
    m = Toeplitz(MICROSOFT_KEY)
    s, d, sp, dp, _, _ = IPV4[0]
    assert m.hash(rss_input(s, d, sp, dp)) != m.hash(rss_input(d, s, dp, sp))


def test_52_byte_key_matches_40_byte_prefix_for_short_inputs() -> None:
    long_key = MICROSOFT_KEY + bytes(range(12))
    data = rss_input("66.9.149.187", "161.142.100.80", 2794, 1766)
    assert Toeplitz(long_key).hash(data) == Toeplitz(MICROSOFT_KEY).hash(data)


def test_rss_hash_command() -> None:
    flow = ("--src", "66.9.149.187", "--dst", "161.142.100.80", "--sport", "2794")
    doc = invoke("rss-hash", *flow, "--dport", "1766", "--format", "json", code=0).json()
    assert (doc["command"], doc["hash"], doc["findings"]) == ("rss-hash", "0x51ccc178", [])
    text = invoke("rss-hash", "--src", "66.9.149.187", "--dst", "161.142.100.80", code=0)
    assert text.out.strip() == "0x323e8fc2"
    bad = invoke("rss-hash", "--src", "1.1.1.1", "--dst", "::1", code=2)
    assert "same IP version" in bad.err
    bad = invoke("rss-hash", "--key", "zz", "--src", "1.1.1.1", "--dst", "2.2.2.2", code=2)
    assert "neither microsoft" in bad.err
