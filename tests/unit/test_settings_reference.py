"""docs/settings.md is the settings table itself, regenerated: it must not drift from lambdas/shared/config.py."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from lambdas.shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_settings_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_every_setting_says_what_it_sets() -> None:
    for item in fields(Settings):
        assert item.metadata["env"].startswith("IPOC_"), item.name
        assert len(item.metadata["what"]) > 10, f"{item.name} says nothing of what it sets"
