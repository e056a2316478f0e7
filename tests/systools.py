"""The real tools some tests drive (installed by `make system-deps` from Debian packages):
their path, a skip saying what to install, or under CI=true a failure, so CI cannot pass
by skipping them."""

from __future__ import annotations

import os
import shutil

import pytest


def require(command: str, package: str) -> str:
    path = shutil.which(command)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{command} is missing: `make test` installs Debian's {package} as root")
        pytest.skip(f"{command} not installed (apt-get install {package}; make system-deps)")
    return path
