"""Fixtures for the compatibility tests: runtimes serving an exact policy text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Proxy, RuntimeLauncher


@pytest.fixture
def launcher(proxy: Proxy, tmp_path: Path) -> Iterator[RuntimeLauncher]:
    """In-process runtimes attested by the session's proxy; ``launcher.serve(text)`` serves a policy as written."""
    runtimes = RuntimeLauncher(proxy, tmp_path / "scratch")
    yield runtimes
    runtimes.stop_all()
