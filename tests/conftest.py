"""Shared fixtures. Privileged tests (marker `privileged`) run as root; under CI=true as root
a skipped privileged test is turned into a failure, so CI cannot pass by skipping them."""

from __future__ import annotations

import os
import signal
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NETSLEUTH_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus" / "tcpdump"


def pytest_configure(config: pytest.Config) -> None:
    """A suite run under nohup has SIGHUP ignored, and every netsleuth it starts would
    inherit that and keep it (nohup's wish is honoured: netsleuth.signals.ending_signals),
    so the hangup tests would hang. A handler that does nothing keeps this process immune
    just the same, and exec resets it to the default in the children."""
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the tcpdump corpus is missing at {CORPUS} (shared/ beside the clone)")
        pytest.skip(f"no tcpdump corpus at {CORPUS}: set NETSLEUTH_SHARED to shared/")
    return CORPUS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if (
        report.skipped
        and item.get_closest_marker("privileged") is not None
        and os.environ.get("CI") == "true"
        and os.geteuid() == 0
    ):
        report.outcome = "failed"
        report.longrepr = f"privileged test skipped under CI as root: {report.longrepr}"


@pytest.fixture(scope="session")
def tshark() -> str:
    """Path of the real tshark (installed by `make test`); under CI its absence fails."""
    import shutil

    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tshark is missing: `make test` installs it (apt-get) when root")
        pytest.skip("tshark not installed (apt-get install tshark)")
    return path


@pytest.fixture
def tracefs_root() -> Iterator[Path]:
    """A mounted tracefs for the test's length: the host's own, or one mounted through
    netsleuth's shared-mount handle (as `drops` mounts it) and unmounted after, so these tests
    run alike on hosts that mount tracefs at boot and hosts that do not."""
    from netsleuth.errors import FacilityError
    from netsleuth.sources.tracefs import Tracefs

    if os.geteuid() != 0:
        pytest.skip("needs root: tracefs")
    try:
        fs = Tracefs.open()
    except FacilityError as err:
        pytest.skip(str(err))
    try:
        yield fs.root
    finally:
        fs.close()
