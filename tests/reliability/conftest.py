"""The reliability suite (`make reliability`): faults, concurrency, fuzzing and secrets, with counts.

Marked ``reliability`` so `make test` leaves it out; every test is bounded in
count and time and uses loopback only. The summary prints what was injected,
fuzzed and found; any leak or secret found fails the test that found it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reliability.tally import TALLY
from tests.support.lifecycle import running_plane

ROOT = Path(__file__).resolve().parents[2]
SLOTS = 2


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: every test here is a reliability test
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts = TALLY.as_dict()
    if not any(counts.values()):
        return
    terminalreporter.section("reliability counts")
    for name, value in counts.items():
        terminalreporter.write_line(f"{name.replace('_', ' ')}: {value}")
    TALLY.write(ROOT / "build" / "reliability.json")


@pytest.fixture
def plane(monkeypatch, proxy, tmp_path):
    with running_plane(monkeypatch, proxy, tmp_path, SLOTS) as plane:
        yield plane
