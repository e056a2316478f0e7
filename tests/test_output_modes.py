"""What permissions netsleuth's output files get: those open(2) gives a new file (0666 less
the umask), or, for a file rewritten in place, the ones it had (outpaths.atomic_output).
They are written to a temporary file and renamed, and mkstemp makes that file 0600: every
report and export came out readable by its owner alone, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import clirun

CAPTURE = "dns-uri.pcap"  # any corpus capture with packets


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def capture(corpus: Path) -> str:
    return str(corpus / CAPTURE)


@pytest.mark.usefixtures("umask")
def test_a_new_report_and_export_follow_the_umask(corpus: Path, tmp_path: Path) -> None:
    html, export = tmp_path / "report.html", tmp_path / "evidence.pcapng"
    clirun.invoke("scan", "--html", str(html), "--export", str(export), capture(corpus))
    assert mode(html) == 0o640
    assert mode(export) == 0o640


@pytest.mark.usefixtures("umask")
def test_a_rewritten_report_keeps_its_modes(corpus: Path, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text("an old report")
    html.chmod(0o644)  # wider than the umask gives: a published report
    clirun.invoke("scan", "--html", str(html), capture(corpus))
    assert html.read_text().startswith("<!")
    assert mode(html) == 0o644
    html.chmod(0o600)
    clirun.invoke("scan", "--html", str(html), capture(corpus))
    assert mode(html) == 0o600
