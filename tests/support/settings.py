"""This process's settings for one test, given explicitly (``lambdas.shared.config.use``) and undone afterwards.

Tests name settings by their environment variables, as a deployment sets them
(``IPOC_WARM_POOL="0"``); the table in ``lambdas.shared.config`` reads them.
Nothing is cached that a test would have to clear: a handler's services are
built per ``Settings`` value.
"""

from __future__ import annotations

from typing import Any

from lambdas.shared import config
from lambdas.shared.config import Settings


def use_settings(monkeypatch: Any, base: Settings | None = None, **environment: str) -> Settings:
    """``base`` (default: the current settings) with these variables set, as this process's settings until the
    test ends (``monkeypatch`` restores the previous ones)."""
    current = base if base is not None else config.settings()
    value = Settings.from_environment({**current.to_environment(), **environment})
    monkeypatch.setattr(config, "_current", value)
    return value
