"""Limits the server, its backends and the CLI share come from one place (item 5 of issue 15: no twins)."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from ipoc.limits import DIRECT_UPLOAD_LIMIT
from lambdas.shared.config import Settings


@pytest.fixture
def defaults() -> Settings:
    return Settings.from_environment({})  # what a deployment that sets neither variable gets


def test_the_direct_upload_limit_is_4_mib_for_the_api_and_the_cli(defaults):
    register = importlib.import_module("client.cli.function.register")  # the module (the package exports the command)

    assert DIRECT_UPLOAD_LIMIT == 4 * 1024 * 1024
    assert defaults.direct_upload_limit == DIRECT_UPLOAD_LIMIT
    assert register.DIRECT_UPLOAD_LIMIT is DIRECT_UPLOAD_LIMIT  # the CLI switches to presigned uploads at the same size


def test_the_pod_ip_wait_has_one_default_below_api_gateways_29_s(defaults):
    from lambdas.vaas.backends.kubernetes import KubernetesBackend

    field = next(f for f in dataclasses.fields(KubernetesBackend) if f.name == "pod_ip_timeout")
    assert field.default == defaults.pod_ip_timeout == 20 < 29
