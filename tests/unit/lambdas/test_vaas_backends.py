"""VaaS reaches a backend by the name in IPOC_VAAS_BACKEND: kubernetes built in, others registered by the deployment."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.vaas import backends
from lambdas.vaas.backends import RuntimeBackend, RuntimeSetup
from tests.support.settings import use_settings


class Recorded(RuntimeBackend):
    def runtime_setup(self) -> RuntimeSetup:
        return RuntimeSetup("proxy:1", "cert", "hash", "linux", "127.0.0.1")

    def start(self, port: int, policy_text: str, labels: dict[str, str]) -> dict[str, Any]:
        return {}

    def stop(self, port: int, facts: dict[str, Any]) -> None:
        pass

    def status(self, port: int, facts: dict[str, Any]) -> str:
        return "missing"


@pytest.fixture
def backend_named(monkeypatch):
    def name(value: str) -> None:
        use_settings(monkeypatch, IPOC_VAAS_BACKEND=value)

    return name


def test_a_registered_backend_is_built_from_its_factory(backend_named, monkeypatch) -> None:
    monkeypatch.setitem(backends._factories, "recorded", Recorded)
    backend_named("recorded")
    assert isinstance(backends.backend_from_settings(), Recorded)


def test_an_unregistered_name_is_refused_naming_what_this_process_has(backend_named) -> None:
    backend_named("nowhere")
    with pytest.raises(RuntimeError, match=r"'nowhere' names no backend this process has \(.*kubernetes.*\)"):
        backends.backend_from_settings()


def test_the_local_deployment_registers_its_backend_under_local(monkeypatch) -> None:
    from local import runtimes

    monkeypatch.delitem(backends._factories, "local", raising=False)
    runtimes.register()
    assert backends._factories["local"] == runtimes.LocalBackend.from_settings
