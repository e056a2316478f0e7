"""Watching steer's spill: every run file made, by whatever table, in this process."""

from __future__ import annotations

import pytest

from netsleuth.steering import spill


def track_spills(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the run files made from now on (the list grows as they are made)."""
    made: list[str] = []
    real_new = spill.SpillDir.new_file

    def tracked(self: spill.SpillDir) -> str:
        name = real_new(self)
        made.append(name)
        return name

    monkeypatch.setattr(spill.SpillDir, "new_file", tracked)
    return made
