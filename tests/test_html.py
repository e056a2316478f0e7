"""HTML reports drawn by a real browser: headless Chromium loads each report from disk (no
network), runs its script, and the DOM it dumps holds the charts: one heatmap cell per CPU
and second, the series, the bars; the screenshots are not blank. Set NETSLEUTH_SCREENSHOTS=1
to refresh docs/report-*.png from these runs."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netsleuth.capture.writer import write_pcap
from netsleuth.craft import incidents
from netsleuth.findings import Finding
from netsleuth.host.doctor_rules import rate_findings
from netsleuth.host.rates import rates
from netsleuth.host.sample import parse_sample
from netsleuth.record.schema import CPU_COLUMNS, open_db
from netsleuth.record.store import DropRow, Recording, Writer
from netsleuth.report.html import MAX_COLUMNS, Page, record_page
from netsleuth.sources.hostfs import read_snapshot
from tests import clirun
from tests.cdp import FLAGS
from tests.pngread import read_png
from tests.systools import require

MAX_BYTES = 5 << 20  # a report one mail server accepts as an attachment

REPO = Path(__file__).parent.parent
HOST128 = REPO / "tests" / "fixtures" / "host128"
NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
SECONDS = 20


def chromium(tmp: Path, url: str, *args: str) -> str:
    browser = require("chromium", "chromium")
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    out = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def dom(tmp: Path, page: Path, fragment: str = "") -> str:
    return chromium(tmp, page.as_uri() + fragment, "--dump-dom")


def screenshot(tmp: Path, page: Path, name: str, height: int = 2200) -> None:
    """Take it, check it is not blank, keep it in docs/ when asked to."""
    png = tmp / f"{name}.png"
    chromium(tmp, page.as_uri(), f"--screenshot={png}", f"--window-size=1280,{height}")
    width, h, bpp, rows = read_png(png.read_bytes())
    assert (width, h) == (1280, height)
    colours: set[bytes] = set()
    inked = 0
    for row in rows[::8]:
        for x in range(0, width * bpp, 8 * bpp):
            px = bytes(row[x : x + 3])
            colours.add(px)
            inked += px != b"\xff\xff\xff"
    assert len(colours) > 20 and inked > 0.05 * (h // 8) * (width // 8), (len(colours), inked)
    if os.environ.get("NETSLEUTH_SCREENSHOTS") == "1":
        shutil.copy(png, REPO / "docs" / f"{name}.png")


def elements(html: str, cls: str) -> list[str]:
    return re.findall(rf'<(?:rect|polyline)[^>]*class="{cls}"[^>]*>', html)


def recording(path: Path) -> tuple[list[Finding], float]:
    """SECONDS samples of the 128-CPU fixture, NET_RX scaled per second, findings in 5-11."""
    a = parse_sample(read_snapshot(HOST128 / "t0"), 0.0)
    b = parse_sample(read_snapshot(HOST128 / "t1"), 1.0)
    base = rates(a, b)
    found = rate_findings(base, b)
    w = Writer(open_db(path, create=True))
    w.meta(host="host128", interval="1", kernel="6.18.44")
    for i in range(SECONDS):
        r = copy.deepcopy(base)
        for c in r.net_rx:
            r.net_rx[c] *= 1 + (i % 5) / 4
        drops = [DropRow("udp_queue_rcv_one_skb", "NO_SOCKET", 0x800, 10 * i)]
        w.add(1_796_040_000.0 + i, r, found if 5 <= i < 12 else [], drops)
    w.db.close()
    return found, base.net_rx[0]


def test_record_report_draws_every_cpu_second(tmp_path: Path) -> None:
    db, out = tmp_path / "r.sqlite", tmp_path / "report.html"
    found, net_rx0 = recording(db)
    res = subprocess.run(
        [NETSLEUTH, "report", "--db", str(db), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert len(text.encode()) < MAX_BYTES
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=", text)  # nothing fetched
    html = dom(tmp_path, out)
    cells = [c for c in elements(html, "cell") if 'data-m="net_rx"' in c]
    assert len(cells) == 128 * SECONDS
    busy = [c for c in elements(html, "cell") if 'data-m="softirq_pct"' in c]
    assert len(busy) == 128 * SECONDS
    # Hover reads these: in the interval ending at second 3 (sample 2) CPU 0 ran 1.5x the
    # fixture's NET_RX rate and spent 60% of its time in softirq (60 ticks of USER_HZ 100).
    cell = next(c for c in cells if 'data-cpu="0"' in c and 'data-t="3"' in c)
    assert f'data-v="{net_rx0 * 1.5:g}"' in cell
    assert 'data-cpu="0" data-t="3" data-v="60"' in next(
        c for c in busy if 'data-cpu="0"' in c and 'data-t="3"' in c
    )
    assert len(elements(html, "series")) == 2 + 32 + 1  # softnet, 32 queues, one drop group
    spans = re.findall(r'<rect[^>]*class="span warning"', html)
    assert len(spans) == len({f.id for f in found})
    # Zoom to seconds 5-9: the heatmap redraws 5 columns.
    assert len(elements(dom(tmp_path, out, "#t=5-9"), "cell")) == 2 * 128 * 5
    screenshot(tmp_path, out, "report-record")


def test_scan_and_steer_html(tmp_path: Path) -> None:
    cap = tmp_path / "pptp.pcap"
    with open(cap, "wb") as fh:
        write_pcap(fh, incidents.incident3_pptp())
    scan_html, steer_html = tmp_path / "scan.html", tmp_path / "steer.html"
    res = subprocess.run(
        [NETSLEUTH, "scan", str(cap), "--format", "json", "--html", str(scan_html)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)["summary"]
    bars = elements(dom(tmp_path, scan_html), "bar")
    kinds = [k for key in ("link", "l3", "tunnels") for k in summary[key]]
    # A bar without the attribute makes re.search None: the test fails there, as it should.
    assert [re.search(r'data-label="([^"]*)"', b).group(1) for b in bars] == kinds  # type: ignore[union-attr]
    screenshot(tmp_path, scan_html, "report-scan", 900)
    res = subprocess.run(
        [
            NETSLEUTH,
            "steer",
            str(cap),
            "--queues",
            "8",
            "--rps-cpus",
            "0-7",
            "--kernel",
            "4.9",
            "--format",
            "json",
            "--html",
            str(steer_html),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    html = dom(tmp_path, steer_html)
    # A bar without the attribute makes re.search None: the test fails there, as it should.
    values = [int(re.search(r'data-v="(\d+)"', b).group(1)) for b in elements(html, "bar")]  # type: ignore[union-attr]
    queues = [q["packets"] for q in doc["rss"]["queues"]]
    cpus = [c["packets"] for c in doc["rps"]["cpus"]]
    assert values[:16] == queues + cpus and len(values) == 16 + 1  # + the pptp kind bar
    screenshot(tmp_path, steer_html, "report-steer", 900)


def test_input_text_cannot_break_out_of_the_page() -> None:
    evil = "</script><img src=x onerror=alert(1)>"
    page = Page(evil)
    page.findings(
        [{"id": evil, "severity": "warning", "count": 1, "summary": evil, "evidence": {"x": evil}}]
    )
    page.chart({"kind": "bars", "labels": [evil], "values": [1], "unit": evil})
    text = page.render()
    assert "<img" not in text and text.count("</script>") == 2


def test_a_day_of_a_128_cpu_host_stays_under_5_mb() -> None:
    """What `report` draws of a day at 1 s: MAX_COLUMNS columns of 96 samples each (the
    reading is bucketed by record.store.read, tested in test_record.py)."""
    n = MAX_COLUMNS
    rng = np.random.default_rng(1)
    rec = Recording(
        times=[96.0 * (t + 1) for t in range(n)],
        samples=86400,
        per=96,
        cpus=list(range(128)),
        cpu={c: rng.random((n, 128)) * 1e5 for c in CPU_COLUMNS},
        queues={f"eth0 rx-{q}": rng.random(n) * 1e5 for q in range(32)},
        findings=[
            {
                "id": "host.softirq_hotspot",
                "severity": "warning",
                "first": 10.0,
                "last": 4000.0,
                "samples": 3991,
                "summary": "hot",
                "evidence": {},
            }
        ],
        drops={(f"fn_{i}", "NO_SOCKET", 0x800): rng.random(n) * 1e3 for i in range(20)},
        meta={"interval": "1"},
    )
    page = record_page(rec, "synthetic")
    heat = next(s for s in page.data.values() if s.get("metric") == "net_rx")
    assert len(heat["times"]) == MAX_COLUMNS and len(heat["values"]) == 128
    assert heat["times"][0] == 96.0  # seconds since the first interval began
    assert "86400 samples every 1 s" in page.meta[0]
    assert len(page.render().encode()) < MAX_BYTES


def test_report_of_a_missing_database_exits_2(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            NETSLEUTH,
            "report",
            "--db",
            str(tmp_path / "none.sqlite"),
            "-o",
            str(tmp_path / "x.html"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stderr.strip() == f"netsleuth: {tmp_path / 'none.sqlite'}: no such record database"


def test_a_recorded_root_makes_a_report(tmp_path: Path) -> None:
    """The two commands end to end, without a browser: record a root, report it."""
    db, out = tmp_path / "r.sqlite", tmp_path / "r.html"
    for args in (
        [
            "record",
            "--db",
            str(db),
            "--root",
            str(HOST128 / "t1"),
            "--interval",
            "0.1",
            "--duration",
            "0.2",
        ],
        ["report", "--db", str(db), "-o", str(out)],
    ):
        res = subprocess.run(
            [NETSLEUTH, *args], capture_output=True, text=True, check=False, timeout=60
        )
        assert res.returncode == 0, res.stderr
    data = re.search(r'id="netsleuth-data">(.*?)</script>', out.read_text())
    assert data is not None
    heat = [s for s in json.loads(data.group(1)).values() if s["kind"] == "heatmap"]
    assert [len(h["values"]) for h in heat] == [128, 128]
    assert all(len(row) == 2 for h in heat for row in h["values"])


NET_RX_CELLS = 'rect.cell[data-m="net_rx"]'


def cell(metric: str, cpu: int, t: int) -> str:
    return f'rect.cell[data-m="{metric}"][data-cpu="{cpu}"][data-t="{t}"]'


def center(browser: Any, selector: str) -> tuple[float, float]:
    """Scroll the element into view; the middle of its box in the viewport."""
    x, y, w, h = browser.js(
        f"(() => {{ const e = document.querySelector('{selector}');"
        " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; })()"
    )
    return x + w / 2, y + h / 2


def test_hover_and_drag_to_zoom_in_a_real_browser(tmp_path: Path) -> None:
    """The mouse over a heatmap cell shows its CPU, second and value; a drag across the
    heatmap zooms every time chart to the dragged seconds."""
    from tests.cdp import Browser

    db, out = tmp_path / "r.sqlite", tmp_path / "report.html"
    _, net_rx0 = recording(db)
    res = subprocess.run(
        [NETSLEUTH, "report", "--db", str(db), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    browser = Browser(require("chromium", "chromium"), tmp_path / "profile")
    try:
        browser.open(out.as_uri())
        browser.mouse("mouseMoved", *center(browser, cell("net_rx", 0, 3)))
        tip = browser.js("document.getElementById('tip').textContent")
        assert tip == f"CPU 0\nsecond 3\n{net_rx0 * 1.5 / 1000:.1f} k NET_RX/s"
        assert browser.js("getComputedStyle(document.getElementById('tip')).display") == "block"
        # Drag from the middle of second 5's column to the middle of second 9's.
        (x0, y0), (x1, _) = (center(browser, cell("net_rx", 4, t)) for t in (5, 9))
        browser.mouse("mousePressed", x0, y0)
        browser.mouse("mouseMoved", (x0 + x1) / 2, y0)
        browser.mouse("mouseMoved", x1, y0)
        browser.mouse("mouseReleased", x1, y0)
        seconds = browser.js(
            f"[...new Set([...document.querySelectorAll('{NET_RX_CELLS}')].map(c => c.dataset.t))]"
        )
        # The columns under the two ends and those between, nothing else.
        assert [float(t) for t in seconds] == [5.0, 6.0, 7.0, 8.0, 9.0]
        assert browser.js("document.querySelector('.zoomed').textContent") == "showing 5.0-9.0 s"
        points = browser.js("document.querySelector('polyline.series').getAttribute('points')")
        assert len(points.split()) == 5  # the line charts follow the zoom

        browser.js("document.querySelector('.reset').click()")
        assert browser.js("document.querySelectorAll('rect.cell').length") == 2 * 128 * SECONDS
    finally:
        browser.close()


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "--html", "{out}.html"),
        ("scan", "--export", "{out}.pcapng"),
        ("steer", "--html", "{out}.html"),
    ],
)
def test_no_report_is_written_when_no_input_could_be_read(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    """An unusable input alone: its error is the one stderr line (exit 2), and no report
    file, which would show nothing (helper-45's fuzzing: 'wrote x.html' followed it)."""
    text = tmp_path / "notes.txt"
    text.write_bytes(b"hello world, not a capture\n")
    out = str(tmp_path / "report")
    argv = [a.format(out=out) for a in args]
    ran = clirun.invoke(*argv, str(text), code=2)
    assert len(ran.err_lines()) == 1 and "not a capture file" in ran.err
    assert not Path(argv[-1]).exists()
    # Beside a capture that reads, the report is written, and the error still says why 2.
    good = tmp_path / "good.pcap"
    with open(good, "wb") as fh:
        write_pcap(fh, incidents.incident2_stp_llc(4))
    ran = clirun.invoke(*argv, str(good), str(text), code=2)
    assert Path(argv[-1]).stat().st_size > 0
    assert "not a capture file" in ran.err_lines()[0]


def test_a_report_cut_short_leaves_the_earlier_one_whole(tmp_path: Path) -> None:
    """The file size limit (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG) stops the report's write
    midway, as a full disk would: the earlier report at that path is left whole and no
    temporary file stays, where the report was truncated and then cut (helper-52)."""
    import resource
    import signal

    cap = tmp_path / "i.pcap"
    with open(cap, "wb") as fh:
        write_pcap(fh, incidents.incident1_poison_fragment())
    out = tmp_path / "r.html"
    out.write_text("the earlier report\n")

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 10, 4 << 10))  # the report: ~10 KB

    done = subprocess.run(
        [sys.executable, "-m", "netsleuth", "scan", "--html", str(out), str(cap)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    said = f"netsleuth: {out}: cannot write the report: File too large"
    assert done.stderr.splitlines() == [said]
    assert out.read_text() == "the earlier report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.pcap", "r.html"]
