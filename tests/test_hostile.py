"""Hostile input, one class per test (issue 13): each input is made small, here, and run in a
child process that must answer with the exact exit code, at most one stderr line, no
traceback, a peak RSS under a bound and within a time bound (the child is killed past it:
a hang fails the test, it does not stall the suite)."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from tests.capfiles import epb, idb, option, shb
from tests.childrun import run

MB = 300  # the product's peak-RSS bar for any input
ETH = incidents.incident1_poison_fragment(normal=3)


def _pcap(path: Path) -> Path:
    with open(path, "wb") as fh:
        write_pcap(fh, ETH)
    return path


# --- 1. data loss: an output that is an input ---------------------------------------------


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_export_over_its_own_input_is_refused_before_writing(tmp_path: Path, how: str) -> None:
    cap = _pcap(tmp_path / "in.pcap")
    before = cap.read_bytes()
    out = tmp_path / "out.pcapng"
    if how == "same":
        out = cap
    elif how == "symlink":
        out.symlink_to(cap)
    else:
        os.link(cap, out)
    r = run("scan", "--export", str(out), str(cap))
    assert r.code == 2
    assert "would overwrite the input" in r.one_line()
    assert cap.read_bytes() == before


def test_export_is_renamed_into_place_only_when_complete(tmp_path: Path) -> None:
    cap = _pcap(tmp_path / "in.pcap")
    out = tmp_path / "out.pcapng"
    out.write_bytes(b"old")
    r = run("scan", "--format", "json", "--export", str(out), str(cap))
    assert r.code == 0, r.err
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pcap", "out.pcapng"]


def test_export_from_a_fifo_is_refused_not_blocked(tmp_path: Path) -> None:
    fifo = tmp_path / "in.pcap"
    os.mkfifo(fifo)
    r = run("scan", "--export", str(tmp_path / "o.pcapng"), str(fifo), timeout=20)
    assert r.code == 2 and "reads its inputs twice" in r.one_line()


# --- 2. bundles and --root: bounded reads ---------------------------------------------------


def _bundle(folder: Path, files: dict[str, bytes], times: tuple[float, ...] = (1.0, 2.0)) -> Path:
    meta = {
        "format": 1,
        "samples": [{"dir": f"samples/{i}", "time": t} for i, t in enumerate(times)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    for i in range(len(times)):
        for rel, data in files.items():
            p = folder / f"samples/{i}" / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    return folder


STAT = {"proc/stat": b"cpu0 1 2 3 4 5 6 7 8 9 10\n"}


def test_bundle_meta_json_pointing_at_dev_zero_is_refused(tmp_path: Path) -> None:
    b = _bundle(tmp_path / "b", STAT)
    (b / "meta.json").unlink()
    (b / "meta.json").symlink_to("/dev/zero")
    r = run("doctor", "--bundle", str(b), timeout=20)
    assert r.code == 2 and "symbolic link" in r.one_line()
    assert r.peak_mb < 100


def test_bundle_sparse_fifo_and_tracefs_members_cost_nothing(tmp_path: Path) -> None:
    b = _bundle(tmp_path / "b", STAT)
    with open(b / "samples/0/proc/huge", "wb") as fh:
        fh.truncate(3 << 30)  # 3 GiB sparse: read up to the 4 MiB file cap only
    os.mkfifo(b / "samples/0/proc/fifo")
    (b / "samples/1/proc/trace_pipe").symlink_to("/sys/kernel/tracing/trace_pipe")
    r = run("doctor", "--bundle", str(b), "--format", "json", timeout=30)
    assert r.code == 0, r.err
    r.no_traceback()
    assert r.peak_mb < MB


def test_bundle_sample_dir_symlinked_out_of_the_bundle_is_refused(tmp_path: Path) -> None:
    b = _bundle(tmp_path / "b", STAT, times=(1.0,))
    os.rename(b / "samples/0", tmp_path / "elsewhere")
    (b / "samples/0").symlink_to("/etc")
    r = run("doctor", "--bundle", str(b))
    assert r.code == 2 and "symbolic link" in r.one_line()


def test_doctor_bundle_dev_zero_is_refused(tmp_path: Path) -> None:
    r = run("doctor", "--bundle", "/dev/zero", timeout=20)
    assert r.code == 2 and "neither a directory nor a regular file" in r.one_line()


def _tar_header(name: bytes, size: int, kind: bytes) -> bytes:
    """A ustar header (POSIX.1-1988) with its checksum, for headers tarfile will not write."""
    h = bytearray(512)
    h[0 : len(name)] = name
    h[100:108] = b"0000644\0"
    h[124:136] = b"%011o\0" % size
    h[156:157] = kind
    h[257:263] = b"ustar\0"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def test_tar_long_name_header_of_a_gigabyte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    # A GNU long-name header declaring 1 GiB, in a few hundred bytes of gzip.
    with gzip.open(path, "wb") as gz:
        gz.write(_tar_header(b"././@LongLink", 1 << 30, b"L"))
        gz.write(bytes(1 << 20))
    r = run("doctor", "--bundle", str(path), timeout=20)
    assert r.code == 2 and "extended header" in r.one_line()
    assert r.peak_mb < 100


def test_tar_gzip_bomb_stops_at_the_stream_cap(tmp_path: Path) -> None:
    from netsleuth.sources import bundle

    path = tmp_path / "b.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as gz:
        gz.write(_tar_header(b"junk", bundle.MAX_STREAM, b"0"))
        zero = bytes(8 << 20)
        for _ in range(bundle.MAX_STREAM // len(zero) + 1):
            gz.write(zero)
    r = run("doctor", "--bundle", str(path), timeout=60)
    assert r.code == 2 and "MiB of archive" in r.one_line()
    assert r.peak_mb < 100


def test_tar_member_count_is_capped() -> None:
    from netsleuth.sources.tarread import TarError, members

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i in range(50):
            tar.addfile(tarfile.TarInfo(f"e{i}"), io.BytesIO(b""))
    raw.seek(0)
    got = []
    with pytest.raises(TarError, match="more than 20 members"):
        for name, _ in members(
            io.BufferedReader(raw), max_members=20, max_file=10, max_stream=1 << 20
        ):
            got.append(name)
    assert got == [f"e{i}" for i in range(20)]


def _root(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "root"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_absurd_cpu_ranges_and_masks_in_a_root_are_linear_and_bounded(tmp_path: Path) -> None:
    root = _root(
        tmp_path,
        {
            "sys/devices/system/cpu/online": "0-100000000\n",
            "proc/irq/24/smp_affinity_list": "0-100000000," * 1000 + "\n",
            "proc/interrupts": "CPU0\n 24: 5 PCI-MSI eth0-TxRx-0\n",
            "sys/class/net/eth0/queues/rx-0/rps_cpus": "f" * 200_000 + "\n",
            "sys/class/net/eth0/statistics/rx_packets": "1\n",
        },
    )
    r = run("doctor", "--root", str(root), "--format", "json", timeout=30)
    assert r.code == 0, r.err
    r.no_traceback()
    assert r.peak_mb < 150


# --- 3. pcapng and snoop denial of service -------------------------------------------------


def test_many_sections_make_few_batches(tmp_path: Path) -> None:
    from netsleuth.capture import open_capture

    frame = ETH[0][1]
    one = shb() + idb("<", 1) + epb("<", 0, 1, frame)
    path = tmp_path / "s.pcapng.gz"
    path.write_bytes(gzip.compress(one * 20_000))
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert sum(len(b) for b in batches) == 20_000
    # 60,000 blocks in 65,536-block walks: a handful of batches (was one per section).
    assert len(batches) <= 5
    r = run("scan", "--format", "json", str(path), timeout=60)
    assert r.code == 0, r.err
    assert json.loads(r.out)["packets"] == 20_000


def test_interface_flood_is_bounded_and_indexed(tmp_path: Path) -> None:
    frame = ETH[0][1]
    # 5M interface blocks in ~250 KB of gzip: 470 MB and minutes before the table was bounded.
    body = shb() + idb("<", 1) * 5_000_000
    body += b"".join(epb("<", i * 997, 1, frame) for i in range(200))
    path = tmp_path / "i.pcapng.gz"
    path.write_bytes(gzip.compress(body, compresslevel=1))
    del body
    r = run("scan", "--format", "json", str(path), timeout=120)
    assert r.code == 0, r.err
    r.no_traceback()
    doc = json.loads(r.out)
    assert doc["packets"] == 200
    assert "capture.corrupt_record" in {f["id"] for f in doc["findings"]}  # ids past the cap
    assert r.peak_mb < 200


def test_snoop_batches_are_bounded_in_bytes(tmp_path: Path) -> None:
    """Snoop records of the largest captured length (262,144 bytes) made batches of 4,096
    of them, 1 GiB held three times over: 3.2 GB of peak RSS from 1 MB of gzip. A batch
    holds about a read buffer's bytes now (8 MiB, and one record more)."""
    from netsleuth.capture import open_capture

    n = 262_144
    frame = ETH[0][1] + bytes(n - len(ETH[0][1]))
    record = b"".join([struct.pack(">IIIIII", n, n, 24 + n, 0, 1_700_000_000, 0), frame])
    path = tmp_path / "big.snoop.gz"
    head = b"snoop\0\0\0" + struct.pack(">II", 2, 4)
    path.write_bytes(gzip.compress(b"".join([head, record * 80]), compresslevel=1))
    reader = open_capture(str(path))
    sizes = [(len(b), b.buf.shape[0]) for b in reader.batches()]
    assert sum(k for k, _ in sizes) == 80 and reader.issues == []
    assert [k for k, _ in sizes] == [32, 32, 16]  # was [80]: 20 MiB in one batch
    assert max(size for _, size in sizes) < 9 << 20


# --- 4. inputs that raised tracebacks -----------------------------------------------------


def _idb_opts(linktype: int, opts: bytes) -> bytes:
    from tests.capfiles import block

    return block("<", 1, struct.pack("<HHI", linktype, 0, 0) + opts + option("<", 0, b""))


def test_undescribed_interface_exports_without_traceback(tmp_path: Path) -> None:
    frame = ETH[0][1]
    path = tmp_path / "u.pcapng"
    path.write_bytes(shb() + idb("<", 1) + epb("<", 0, 1, frame) + epb("<", 7, 2, frame))
    out = tmp_path / "o.pcapng"
    r = run("scan", "--format", "json", "--export", str(out), str(path))
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert "capture.corrupt_record" in {f["id"] for f in doc["findings"]}
    assert doc["export"]["packets"] >= 1


@pytest.mark.parametrize(
    "opts",
    [
        option("<", 14, struct.pack("<q", -(1 << 40))),  # if_tsoffset -2^40 s
        option("<", 9, bytes([127])),  # if_tsresol 10^-127 s
        option("<", 9, bytes([0x80 | 100])),  # if_tsresol 2^-100 s
    ],
)
def test_absurd_clocks_are_a_finding_and_other_inputs_still_read(
    tmp_path: Path, opts: bytes
) -> None:
    frame = ETH[0][1]
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(shb() + _idb_opts(1, opts) + epb("<", 0, (1 << 64) - 1, frame))
    good = _pcap(tmp_path / "good.pcap")
    out = tmp_path / "o.pcapng"
    r = run("scan", "--format", "json", "--export", str(out), str(bad), str(good))
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert [i["packets"] for i in doc["inputs"]] == [1, len(ETH)]
    assert "capture.corrupt_record" in {f["id"] for f in doc["findings"]}


def test_negative_timestamps_export(tmp_path: Path) -> None:
    path = tmp_path / "n.pcapng"
    off = option("<", 14, struct.pack("<q", -(1 << 31)))  # if_tsoffset: 1901
    path.write_bytes(shb() + _idb_opts(1, off) + b"".join(epb("<", 0, 5, f) for _, f in ETH))
    r = run("scan", "--format", "json", "--export", str(tmp_path / "o.pcapng"), str(path))
    assert r.code == 0, r.err
    assert json.loads(r.out)["export"]["packets"] >= 1


def test_proc_texts_with_unicode_digits_and_huge_integers(tmp_path: Path) -> None:
    big = "9" * 5000
    root = _root(
        tmp_path,
        {
            "proc/interrupts": "CPU0 CPU1\n 24: ١٢ 5 PCI-MSI eth0-TxRx-0\n 25: 1 2 x eth0-rx-"
            + big
            + "\n",
            "proc/softirqs": "CPU0\nNET_RX: " + big + "\n",
            "proc/net/dev": "a\nb\n eth[/x]: " + " ".join([big] * 16) + "\n lo: " + " 1" * 16,
            "proc/net/snmp": "Ip: A B\nIp: " + big + " -1\n",
            "proc/stat": "cpu0 " + " ".join([big] * 7) + "\n",
            "proc/sys/net/core/netdev_budget": big,
            "ethtool/eth0/statistics": "rx_queue_" + big + "_packets: 5\nrx_queue_0_packets: ٣\n",
        },
    )
    r = run("doctor", "--root", str(root))
    assert r.code == 0, r.err
    r.no_traceback()


@pytest.mark.parametrize(
    ("times", "files", "says"),
    [
        ((1.0, 1.0), STAT, "apart"),
        ((1.0, 1.0 + 1e-12), STAT, "apart"),
    ],
)
def test_bundle_sample_times_must_increase(
    tmp_path: Path, times: tuple[float, ...], files: dict[str, bytes], says: str
) -> None:
    b = _bundle(tmp_path / "b", files, times)
    r = run("doctor", "--bundle", str(b))
    assert r.code == 2 and says in r.one_line()


def test_deeply_nested_meta_json(tmp_path: Path) -> None:
    b = _bundle(tmp_path / "b", STAT)
    (b / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    r = run("doctor", "--bundle", str(b))
    assert r.code == 2 and "meta.json" in r.one_line()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("steer", "--rps-cpus", "5-1", "x.pcap"), "descending"),
        (("steer", "--rps-cpus", "٣", "x.pcap"), "CPU list"),
        (("steer", "--rps-cpus", "0-100000000", "x.pcap"), "CPU list"),
        (("steer", "--from-host", "a" * 100, "x.pcap"), "device name"),
        (("steer", "--from-host", "eth0/../x", "x.pcap"), "device name"),
    ],
)
def test_absurd_arguments(args: tuple[str, ...], says: str) -> None:
    r = run(*args)
    assert r.code == 2 and says in r.one_line()


# --- 5. rich markup from input --------------------------------------------------------------


def test_paths_and_devices_are_printed_literally(tmp_path: Path) -> None:
    r = run("scan", "nope[/x]")
    assert r.code == 2 and r.one_line() == "netsleuth: nope[/x]: No such file or directory"
    assert "nope[/x]" in r.text
    folder = tmp_path / "[incident-42]"
    folder.mkdir()
    cap = _pcap(folder / "eth0.pcap")
    r = run("scan", str(cap), env={"COLUMNS": "300"})
    assert r.code == 0, r.err
    assert "[incident-42]/eth0.pcap" in r.text  # was shown as /eth0.pcap
    dev = b"a\nb\n eth[/x]: " + b" 1" * 16 + b"\n"
    b = _bundle(tmp_path / "b", {**STAT, "proc/net/dev": dev})
    r = run("doctor", "--bundle", str(b))
    assert r.code == 0, r.err
    r.no_traceback()
    assert "eth[/x]" in r.text  # was a MarkupError


# --- 6. I/O errors --------------------------------------------------------------------------


def test_output_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    cap = _pcap(tmp_path / "in.pcap")
    r = run(
        "collect",
        "-o",
        str(tmp_path / "missing/dir/b.tar.gz"),
        "--duration",
        "0",
        "--interval",
        "0.1",
    )
    assert r.code == 2 and "No such file or directory" in r.one_line()
    with open("/dev/full", "wb") as full:
        r = run("scan", str(cap), stdout=full)
    assert r.code == 2 and "No space left on device" in r.one_line()
    r = run("scan", "--export", "/dev/full", str(cap))
    assert r.code == 2 and "No space left on device" in r.one_line()
    r = run("scan", "-", close_stdin=True)
    assert r.code == 2 and "stdin is closed" in r.err.decode()
    r.no_traceback()
    r = run("demo", "--keep", "/proc/netsleuth-no")
    assert r.code == 2 and "/proc/netsleuth-no" in r.one_line()


def test_a_reader_that_goes_away_is_exit_0(tmp_path: Path) -> None:
    cap = _pcap(tmp_path / "in.pcap")
    rd, wr = os.pipe()
    os.close(rd)  # `| head` that already left
    with os.fdopen(wr, "wb") as out:
        r = run("scan", str(cap), str(cap), stdout=out)
    assert r.code == 0
    assert r.err == b""


# --- 7. lifecycle ---------------------------------------------------------------------------


def test_sigterm_removes_demo_temp_dir(tmp_path: Path) -> None:
    # 0.5 s after its handler is in place the demo is surely running: its doctor step alone
    # sleeps 1 s between its two samples.
    r = run("demo", env={"TMPDIR": str(tmp_path)}, signal_after=(0.5, signal.SIGTERM), timeout=60)
    assert r.code == 143, r.err
    r.no_traceback()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("after", [0.0, 0.05, 0.2])  # after its handler is in place
def test_sigint_or_sigterm_while_starting_is_one_line(after: float) -> None:
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        r = run("scan", "-", signal_after=(after, sig), stdin=subprocess.PIPE, timeout=20)
        assert r.code == code, r.err
        assert r.one_line() in ("netsleuth: interrupted", "netsleuth: terminated")


def test_sigterm_restores_the_terminal_under_watch() -> None:
    import pty

    master, slave = pty.openpty()
    try:
        r = run("watch", "--interval", "0.2", stdout=slave, signal_after=(1.5, signal.SIGTERM))
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert r.code == 143 and r.one_line() == "netsleuth: terminated"
    # rich hides the cursor while live (CSI ?25l) and shows it again on stop (CSI ?25h).
    assert shown.rfind(b"\x1b[?25h") > shown.rfind(b"\x1b[?25l") >= 0


# --- 8. steer under a flood of distinct flows ---------------------------------------------


def _flows_pcap(path: Path, n: int) -> None:
    """n UDP packets in n distinct flows (source address and port vary), plus one flow
    carrying a tenth of all packets: Ethernet/IPv4/UDP written as numpy rows."""
    import numpy as np

    frame = bytes.fromhex(
        "02000000000102000000000208004500002e00000000401100000a0000010a000002d431005000190000"
    ) + bytes(18)
    rec = np.zeros((n, 16 + len(frame)), dtype=np.uint8)
    hdr = np.zeros(n, dtype=[("s", "<u4"), ("u", "<u4"), ("c", "<u4"), ("w", "<u4")])
    hdr["s"], hdr["u"], hdr["c"], hdr["w"] = 1_700_000_000, 0, len(frame), len(frame)
    rec[:, :16] = hdr.view(np.uint8).reshape(n, 16)
    rec[:, 16:] = np.frombuffer(frame, dtype=np.uint8)
    i = np.arange(n, dtype=np.uint64)
    src = (0x0A000001 + i).astype(">u4")
    heavy = i % 10 == 0
    src[heavy] = 0x0B000001
    rec[:, 16 + 26 : 16 + 30] = src.view(np.uint8).reshape(n, 4)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        fh.write(rec.tobytes())


def test_steer_memory_stays_bounded_under_a_million_flows(tmp_path: Path) -> None:
    path = tmp_path / "flows.pcap"
    _flows_pcap(path, 1_000_000)
    r = run("steer", "--format", "json", str(path), env={"TMPDIR": str(tmp_path)}, timeout=120)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["flows"]["distinct"] == 900_001
    assert doc["flows"]["heaviest"][0]["packets"] == 100_000
    assert doc["flows"]["heaviest"][0]["src"] == "11.0.0.1"
    assert r.peak_mb < MB  # 335 MB before the flow table spilled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flows.pcap"]  # runs removed


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "no_newline"])
def test_listen_root_socket_tables_are_read_bounded(tmp_path: Path, kind: str) -> None:
    net = tmp_path / "root/proc/net"
    net.mkdir(parents=True)
    (net / "tcp6").write_text("header\n")
    if kind == "dev_zero":
        (net / "tcp").symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(net / "tcp")
    else:
        with open(net / "tcp", "wb") as fh:
            fh.truncate(1 << 28)  # 256 MiB of NULs, no line end: sparse, read 4 KiB at a time
    r = run("listen", "--root", str(tmp_path / "root"), "--format", "json", timeout=60)
    if kind == "no_newline":
        assert r.code == 0, r.err
    else:
        assert r.code == 2 and "not read" in r.one_line()
    assert r.peak_mb < 100


def test_sections_that_flip_byte_order_still_make_few_batches(tmp_path: Path) -> None:
    from netsleuth.capture import open_capture

    frame = ETH[0][1]
    pair = shb("<") + idb("<", 1) + epb("<", 0, 1, frame)
    pair += shb(">") + idb(">", 1) + epb(">", 0, 2, frame)
    path = tmp_path / "flip.pcapng"
    path.write_bytes(pair * 2000)
    reader = open_capture(str(path))
    batches = list(reader.batches())
    assert [int(t) for b in batches for t in b.ts_ns][:4] == [1000, 2000, 1000, 2000]
    assert sum(len(b) for b in batches) == 4000 and len(batches) == 1  # was 4,000 batches
    assert reader.issues == []


def test_sigterm_during_steer_removes_its_spilled_runs(tmp_path: Path) -> None:
    cap = tmp_path / "cap"
    cap.mkdir()
    _flows_pcap(cap / "flows.pcap", 3_000_000)
    spill = tmp_path / "spill"
    spill.mkdir()
    r = run(
        "steer",
        "--compare",
        "--format",
        "json",
        str(cap / "flows.pcap"),
        env={"TMPDIR": str(spill)},
        signal_after=(2.5, signal.SIGTERM),
        timeout=120,
    )
    assert r.code == 143 and r.one_line() == "netsleuth: terminated"
    assert list(spill.iterdir()) == []


def test_demo_keep_replaces_a_planted_symlink_instead_of_writing_through_it(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "incident1-poison-fragment.pcap").symlink_to(victim)
    r = run("demo", "--format", "json", "--keep", str(keep), timeout=120)
    assert r.code == 0, r.err
    assert victim.read_bytes() == b"precious"
    planted = keep / "incident1-poison-fragment.pcap"
    assert not planted.is_symlink() and planted.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"


def test_a_sample_directory_of_too_many_entries_stops_at_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netsleuth.errors import InputError
    from netsleuth.sources import bundle

    b = _bundle(tmp_path / "b", STAT, times=(1.0,))
    for i in range(60):
        (b / f"samples/0/e{i}").mkdir()  # entries, not even files
    monkeypatch.setattr(bundle, "MAX_MEMBERS", 50)
    with pytest.raises(InputError, match="more than 50 files"):
        bundle.read_bundle(b)
