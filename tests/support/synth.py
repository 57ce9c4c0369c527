"""One synthesis of the CDK app per test session (about 10 s), shared by the template tests (tests/infra/) and the
deployment proofs (tests/deploy/); a fixture plugin (``pytest_plugins`` in tests/conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # aws_cdk takes seconds to import: only when a test synthesizes
    import aws_cdk as cdk
    from aws_cdk import cx_api
    from aws_cdk.assertions import Template

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synth:
    app: cdk.App
    stacks: dict[str, cdk.Stack]  # by stack name
    assembly: cx_api.CloudAssembly

    def template(self, name: str) -> Template:
        from aws_cdk.assertions import Template

        return Template.from_stack(self.stacks[name])


def context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def synth() -> Synth:
    import aws_cdk as cdk

    from infra.app import build

    app = cdk.App(context=context())
    stacks = {stack.stack_name: stack for stack in build(app)}
    return Synth(app=app, stacks=stacks, assembly=app.synth())
