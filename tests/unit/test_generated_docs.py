"""The docs/ pages generated from the code (the CLI's help, the settings table) must not drift from it: each
script, run with --check, says whether its page is what it would write now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["cli_reference.py", "settings_reference.py"])
def test_the_generated_page_is_current(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
