"""`report` on record databases it did not write: each corrupt or hostile one is refused
with one stderr line and exit 2 (no traceback, no memory that grows with what the file
claims), a value JSON cannot hold is drawn as unknown, and the input is never written."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from netsleuth.record.schema import CPU_COLUMNS, open_db
from netsleuth.record.store import MAX_SERIES, read
from tests import childrun
from tests.recordutil import recorded

NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))
BOMB_BYTES = 400 << 20  # zeros: zlib packs them ~1000:1, into ~400 KB
PEAK_RSS_KB = 300 << 10  # the Python, NumPy and SQLite of one report, with room to spare


def edit(path: Path, *sql: str, args: tuple[object, ...] = ()) -> None:
    db = sqlite3.connect(path)
    for stmt in sql:
        db.execute(stmt, args if "?" in stmt else ())
    db.commit()
    db.close()


def report(db: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETSLEUTH, "report", "--db", str(db), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


HOSTILE: dict[str, Callable[[Path], object]] = {
    "cpu blob too short": lambda p: edit(
        p, "UPDATE sample SET cpu=?", args=(zlib.compress(bytes(8)),)
    ),
    "cpu blob not zlib": lambda p: edit(p, "UPDATE sample SET cpu=?", args=(b"not zlib",)),
    "cpu blob too long": lambda p: edit(
        p, "UPDATE sample SET cpu=?", args=(zlib.compress(bytes(4 * 6 * 128 + 4)),)
    ),
    "layout id missing": lambda p: edit(p, "UPDATE sample SET cpus=4242"),
    "layout not numbers": lambda p: edit(
        p, 'UPDATE layout SET names=\'["a","b"]\' WHERE id IN (SELECT cpus FROM sample)'
    ),
    "layout not a list": lambda p: edit(
        p, "UPDATE layout SET names='{}' WHERE id IN (SELECT cpus FROM sample)"
    ),
    "evidence not JSON": lambda p: edit(p, "UPDATE finding SET evidence='{'"),
    "evidence NaN": lambda p: edit(p, "UPDATE finding SET evidence='{\"x\": NaN}'"),
    "interval abc": lambda p: edit(p, "UPDATE meta SET value='abc' WHERE key='interval'"),
    "interval 0": lambda p: edit(p, "UPDATE meta SET value='0' WHERE key='interval'"),
    "interval inf": lambda p: edit(p, "UPDATE meta SET value='inf' WHERE key='interval'"),
    "t 1e300": lambda p: edit(p, "UPDATE sample SET t=1e300"),
    "t text": lambda p: edit(p, "UPDATE sample SET t='soon'"),
    "finding first 1e300": lambda p: edit(p, "UPDATE finding SET first=1e300"),
    "not sqlite": lambda p: p.write_bytes(b"SQLite format 3\0" + bytes(200)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_database_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    db = recorded(tmp_path / "r.sqlite")
    HOSTILE[case](db)
    res = report(db, tmp_path / "r.html")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"netsleuth: {db}:"), res.stderr
    assert not (tmp_path / "r.html").exists()


def test_a_zlib_bomb_is_refused_in_little_memory(tmp_path: Path) -> None:
    """400 KB that inflate to 400 MB: refused after inflating no more than the layout says
    (6 x 128 floats); the peak RSS of the child, read with wait4, stays modest."""
    db = recorded(tmp_path / "r.sqlite")
    bomb = zlib.compress(bytes(BOMB_BYTES), 9)
    assert len(bomb) < 500_000
    edit(db, "UPDATE sample SET cpu=?", args=(bomb,))
    # childrun's launcher: a child forked from pytest would count pytest's pages in its
    # ru_maxrss (it survives exec), hundreds of MB late in the suite.
    res = childrun.run("report", "--db", str(db), "-o", str(tmp_path / "r.html"))
    assert res.code == 2, res.err
    assert "longer than its 768 values" in res.one_line()
    assert res.peak_mb * 1024 < PEAK_RSS_KB, res.peak_mb


def test_infinite_rates_are_drawn_as_unknown(tmp_path: Path) -> None:
    """A stored +inf (float32 overflow of a huge rate) becomes null in the page's JSON,
    which a browser's JSON.parse accepts (it rejects Infinity and NaN)."""
    db = recorded(tmp_path / "r.sqlite")
    values = [float("inf")] * (len(CPU_COLUMNS) * 128)
    blob = zlib.compress(b"".join((0x7F800000).to_bytes(4, "little") for _ in values))
    edit(db, "UPDATE sample SET cpu=?", args=(blob,))
    out = tmp_path / "r.html"
    res = report(db, out)
    assert res.returncode == 0, res.stderr
    data = re.search(r'id="netsleuth-data">(.*?)</script>', out.read_text())
    assert data is not None

    def reject(name: str) -> None:
        raise AssertionError(f"{name} in the page's JSON")

    charts = json.loads(data.group(1), parse_constant=reject)
    heat = next(c for c in charts.values() if c["kind"] == "heatmap")
    assert heat["values"][0] == [None, None]


def test_many_drop_groups_and_queue_series_stay_bounded(tmp_path: Path) -> None:
    """Rows a database may hold without limit (drop groups, devices with queues) are read
    into at most MAX_SERIES series each; the page says what was left out."""
    db = recorded(tmp_path / "r.sqlite")
    conn = sqlite3.connect(db)
    sid = conn.execute("SELECT max(id) FROM sample").fetchone()[0]
    conn.executemany(
        "INSERT INTO drops VALUES (?, ?, NULL, 2048, 1)",
        [(sid, f"fn{i}") for i in range(MAX_SERIES + 50)],
    )
    wide = zlib.compress(bytes(4 * 4000))  # 4000 queues of 0.0
    conn.executemany(
        "INSERT INTO device VALUES (?, ?, 1, x'', ?)", [(sid, f"nic{i}", wide) for i in range(3)]
    )
    conn.commit()
    conn.close()
    rec = read(open_db(db, create=False))
    assert len(rec.drops) == MAX_SERIES + 1 and ("other", None, 0) in rec.drops
    assert sum(1 for q in rec.queues if q.startswith("nic")) == 4000
    assert any("queue series" in n for n in rec.notes)
    assert any("'other'" in n for n in rec.notes)
    out = tmp_path / "r.html"
    res = report(db, out)
    assert res.returncode == 0, res.stderr
    assert "drawn together as &#x27;other&#x27;" in out.read_text()
