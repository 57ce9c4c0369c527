"""The CLI in process, as hatch tests it: click's CliRunner, stderr kept apart from stdout.

``ipoc_cli(..., terminal=True)`` makes rich treat stderr as an interactive
terminal through rich's own TTY_COMPATIBLE variable; otherwise stderr is
CliRunner's pipe, as in a log or a CI job.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from client.cli import ipoc

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Variables that would change what rich or the root group decide; each test sets them itself.
_CLEARED = ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR", "NO_COLOR", "IPOC_QUIET", "IPOC_VERBOSE", "IPOC_COLOR")


def plain(text: str) -> str:
    """Terminal output without escape codes, one line per redraw."""
    return _ANSI.sub("", text).replace("\r", "\n")


@pytest.fixture
def ipoc_cli() -> Callable[..., Result]:
    def invoke(*args: str, terminal: bool = False) -> Result:
        env: dict[str, str | None] = {name: None for name in _CLEARED}
        env["COLUMNS"] = "120"
        if terminal:
            env |= {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color"}
        return CliRunner(env=env).invoke(ipoc, list(args), catch_exceptions=False)

    return invoke
