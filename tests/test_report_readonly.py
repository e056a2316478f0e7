"""`report` opens its input read-only: no byte of it changes, and it works on read-only
media (https://www.sqlite.org/uri.html: mode=ro, immutable)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recordutil import recorded

NETSLEUTH = str(Path(sys.executable).with_name("netsleuth"))


def report(db: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETSLEUTH, "report", "--db", str(db), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_report_leaves_its_input_byte_for_byte(tmp_path: Path) -> None:
    """A database in rollback (DELETE) journal mode: header bytes 18-19 say so (1, 1; WAL
    is 2, 2: https://www.sqlite.org/fileformat2.html#file_format_version_numbers), and a
    report must not switch it to WAL nor write anything else."""
    db = recorded(tmp_path / "r.sqlite")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    conn.close()
    before = db.read_bytes()
    assert before[18:20] == b"\x01\x01"
    res = report(db, tmp_path / "r.html")
    assert res.returncode == 0, res.stderr
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.sqlite"]


@pytest.mark.privileged
def test_report_reads_a_database_on_read_only_media(tmp_path: Path) -> None:
    """A read-only bind mount (as a CD or a forensic copy would be), with a file name that
    needs URI quoting."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    media = tmp_path / "media"
    media.mkdir()
    for mode in ("DELETE", "WAL"):
        db = recorded(media / f"r {mode}?#%.sqlite")
        conn = sqlite3.connect(db)
        conn.execute(f"PRAGMA journal_mode={mode}")
        conn.close()
    subprocess.run(["mount", "--bind", str(media), str(media)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(media)], check=True)
        for mode in ("DELETE", "WAL"):
            out = tmp_path / f"{mode}.html"
            res = report(media / f"r {mode}?#%.sqlite", out)
            assert res.returncode == 0, res.stderr
            assert "2 samples" in res.stderr and out.stat().st_size > 0
    finally:
        subprocess.run(["umount", str(media)], check=True)
    shutil.rmtree(media)
