"""What permissions netsleuth's output files get: those open(2) gives a new file (0666 less
the umask), or, for a file rewritten in place, the ones it had (outpaths.atomic_output).
They are written to a temporary file and renamed, and mkstemp makes that file 0600: every
report and export came out readable by its owner alone, whatever the umask."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsleuth import outpaths
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


@pytest.mark.usefixtures("umask")
@pytest.mark.skipif(os.geteuid() != 0, reason="gives a file to another user: root only")
def test_a_file_of_another_user_lends_no_more_than_a_new_file_gets(tmp_path: Path) -> None:
    """The file replaced may be another user's: one planted in a shared folder where a fixed
    name is written (demo --keep /tmp, collect's bundle folder: special_in_place=False,
    whose point is that such a file is replaced, not trusted). Its modes lent whole made
    the new file, owned by this process (root), world-writable: a 0666 plant gave a
    root-owned 0666 capture anyone could rewrite. Another user's file lends only what a new
    file would get too; a file this process owns lends all it has."""
    planted = tmp_path / "incident1.pcap"
    planted.write_bytes(b"planted")
    os.chown(planted, 65534, 65534)
    planted.chmod(0o666)
    with outpaths.atomic_output(str(planted), special_in_place=False) as fh:
        fh.write(b"ours")
    assert planted.read_bytes() == b"ours" and planted.stat().st_uid == 0
    assert mode(planted) == 0o640  # 0666 & (0666 & ~027)
    private = tmp_path / "report.html"
    private.write_text("a user's report")
    os.chown(private, 65534, 65534)
    private.chmod(0o600)
    with outpaths.atomic_output(str(private)) as fh:
        fh.write(b"rewritten")
    assert mode(private) == 0o600  # not opened wider than it was
    own = tmp_path / "own.html"
    own.write_text("ours")
    own.chmod(0o666)
    with outpaths.atomic_output(str(own)) as fh:
        fh.write(b"again")
    assert mode(own) == 0o666


def test_a_filesystem_that_refuses_chmod_still_gets_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The modes are a courtesy: where chmod is refused (FUSE and network filesystems that
    do not implement it answer ENOTSUP or EPERM), the output is still written, with
    mkstemp's 0600, as before modes were set. It was lost: `scan --html` there ended in
    "cannot write the report: Operation not supported", exit 2."""

    def refused(fd: int, mode: int) -> None:
        raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP))

    monkeypatch.setattr(os, "fchmod", refused)
    target = tmp_path / "report.html"
    with outpaths.atomic_output(str(target)) as fh:
        fh.write(b"whole")
    assert target.read_bytes() == b"whole"
    assert mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
