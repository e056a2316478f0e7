"""Under CI=true as root, a privileged test that skips fails the run (tests/conftest.py)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

@pytest.mark.privileged
def test_needs_a_facility() -> None:
    pytest.skip("tracefs is not mounted")
"""


@pytest.mark.parametrize("ci", ["true", ""])
def test_privileged_skip_fails_only_under_ci_as_root(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    privileged: needs root\n")
    pytester.makepyfile(SKIPPING)
    monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_inprocess()
    if ci == "true" and os.geteuid() == 0:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*privileged test skipped under CI as root*"])
    else:
        result.assert_outcomes(skipped=1)
