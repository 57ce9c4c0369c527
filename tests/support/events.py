"""Recorded API Gateway events (``tests/events/*.json``), loaded as fresh dicts a test may change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict[str, Any]:
    """``load_event("rest_get_instance_iam_user")`` → that file's event (a new dict on every call)."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def event_names() -> list[str]:
    return sorted(path.stem for path in EVENTS.glob("*.json"))
