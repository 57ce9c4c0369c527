"""The template tests read the synthesis of ``tests/support/synth.py`` (one per session) as templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.synth import Synth


@pytest.fixture(scope="session")
def platform(synth: Synth):
    return synth.template("Ipoc")


@pytest.fixture(scope="session")
def platform_json(platform) -> dict:
    return platform.to_json()


@pytest.fixture(scope="session")
def templates(synth: Synth) -> dict[str, dict]:
    """Each stack's template as written to the cloud assembly (cdk.out), by stack name."""
    directory = Path(synth.assembly.directory)
    return {name: json.loads((directory / f"{name}.template.json").read_text()) for name in synth.stacks}
