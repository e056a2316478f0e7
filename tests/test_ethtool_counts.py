"""SIOCETHTOOL statistics: the kernel copies the driver's own count of entries whatever
length netsleuth's buffer says (net/ethtool/ioctl.c), so a count above MAX_STATS is refused,
never asked for in a shorter buffer, and a count that changes between the calls is named."""

from __future__ import annotations

import socket

import pytest

from netsleuth.sources import ethtool
from tests.fakeethtool import FakeDevice


def read(dev: FakeDevice, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[int]]:
    monkeypatch.setattr(ethtool, "_call", dev)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        return ethtool.read_stats(sock, "eth9")


def test_a_plausible_count_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = FakeDevice(stats=3)
    names, values = read(dev, monkeypatch)
    assert (names, values) == (["stat_0", "stat_1", "stat_2"], [0, 1, 2])
    assert dev.overflows == []


def test_more_stats_than_netsleuth_accepts_are_refused_not_clamped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = FakeDevice(stats=ethtool.MAX_STATS + 1)
    with pytest.raises(ethtool.TooManyStatsError) as err:
        read(dev, monkeypatch)
    assert err.value.count == ethtool.MAX_STATS + 1
    assert str(err.value) == "eth9 reports 65537 statistics, more than the 65536 netsleuth accepts"
    # Only the count was asked: no buffer was handed to the kernel for it to overrun.
    assert dev.calls == [ethtool.ETHTOOL_GSSET_INFO] and dev.overflows == []


def test_the_limit_itself_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = FakeDevice(stats=ethtool.MAX_STATS)
    names, values = read(dev, monkeypatch)
    assert len(names) == len(values) == ethtool.MAX_STATS and dev.overflows == []


def test_a_count_that_shrinks_between_the_calls_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ethtool.CountChangedError, match="changed from 4 to 2"):
        read(FakeDevice(stats=4, grow_to=2), monkeypatch)


def test_a_count_that_grows_between_the_calls_overruns_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel writes 900 entries into a request for 4 (net/ethtool/ioctl.c): the buffer
    # has room for them, and the answer is refused, after one more try.
    dev = FakeDevice(stats=4, grow_to=900)
    with pytest.raises(ethtool.CountChangedError, match="changed from 4 to 900"):
        read(dev, monkeypatch)
    assert dev.overflows == []
    assert dev.calls.count(ethtool.ETHTOOL_GSSET_INFO) == 2  # asked again once


def test_the_bundle_says_why_a_device_has_no_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ethtool, "_call", FakeDevice(stats=ethtool.MAX_STATS + 1))
    files, notes = ethtool.ethtool_texts(["eth9"])
    assert "ethtool/eth9/statistics" not in files
    assert notes == [
        "ethtool -S eth9: eth9 reports 65537 statistics, more than the 65536 netsleuth "
        "accepts, skipped"
    ]


def test_reads_reuse_their_buffers_and_see_only_what_was_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The MAX_STATS-sized buffers are made once per thread (watch reads them every
    second); a shorter read after a longer one sees its own entries only."""
    assert read(FakeDevice(stats=5), monkeypatch) == (
        [f"stat_{i}" for i in range(5)],
        [0, 1, 2, 3, 4],
    )
    strings, values = ethtool._ROOM.strings, ethtool._ROOM.values
    assert len(strings) == 12 + ethtool.MAX_STATS * ethtool.ETH_GSTRING_LEN
    assert read(FakeDevice(stats=2), monkeypatch) == (["stat_0", "stat_1"], [0, 1])
    assert ethtool._ROOM.strings is strings and ethtool._ROOM.values is values
