"""Small review fixes: lab notes print as written (rich's Text does not parse markup, so
escaping it showed backslashes), and a profile with hidden kernel addresses says so once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

import netsleuth.profile.run as profile_run
from netsleuth.drops.run import load_symbols
from netsleuth.drops.symbols import Kallsyms
from netsleuth.lab.replay import LabReport
from netsleuth.lab.rps import RpsReport
from netsleuth.report.lab_text import render_lab, render_rps

NOTE = "device [lab1x0] took [bold]9[/bold] addresses"


def printed(draw: object) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    assert callable(draw)
    draw(console)
    return out.getvalue()


def test_lab_notes_print_as_written() -> None:
    lab = printed(lambda c: render_lab(c, LabReport([], 1.0, [NOTE]), [], "lab replay"))
    rps = printed(lambda c: render_rps(c, RpsReport([0], [], [NOTE], "6.1")))
    for text in (lab, rps):
        assert f"note: {NOTE}" in text
        assert "\\" not in text


def test_hidden_kernel_addresses_make_one_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc/kallsyms as an unprivileged reader sees it with kptr_restrict=1: zero addresses.
    (tmp_path / "kallsyms").write_text(
        "0000000000000000 T _text\n0000000000000000 t __netif_receive_skb_core\n"
    )

    def restricted(notes: list[str]) -> Kallsyms:
        return load_symbols(notes, tmp_path)

    monkeypatch.setattr(profile_run, "load_symbols", restricted)
    notes: list[str] = ["earlier note"]
    assert profile_run.kallsyms(notes).restricted
    assert notes[0] == "earlier note" and len(notes) == 2
    assert "kptr_restrict" in notes[1] and "hidden" in notes[1]
