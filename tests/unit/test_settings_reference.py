"""Every setting says what it sets: docs/settings.md is made of it (tests/unit/test_generated_docs.py)."""

from __future__ import annotations

from dataclasses import fields

from lambdas.shared.config import Settings


def test_every_setting_says_what_it_sets() -> None:
    for item in fields(Settings):
        assert item.metadata["env"].startswith("IPOC_"), item.name
        assert len(item.metadata["what"]) > 10, f"{item.name} says nothing of what it sets"
