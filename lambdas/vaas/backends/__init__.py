"""Where runtimes run: ``local`` (runtime processes on this machine) or ``kubernetes`` (EKS pods)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from lambdas.shared.config import settings


@dataclass(frozen=True)
class RuntimeSetup:
    """How a backend's runtimes are attested and reached: what it contributes to every full policy it serves
    (not :class:`ipoc.policy.Infrastructure`, the policy fields these values become)."""

    proxy_url: str
    proxy_cert: str
    runtime_hash: str
    platform: str
    endpoint_host: str


class RuntimeBackend(ABC):
    """Starts and stops one runtime per slot (a port); every operation is idempotent."""

    @abstractmethod
    def runtime_setup(self) -> RuntimeSetup: ...

    @abstractmethod
    def start(self, port: int, policy_text: str, labels: dict[str, str]) -> dict[str, Any]:
        """Start a runtime for the policy; return facts to keep with the slot. On failure leave nothing behind."""

    @abstractmethod
    def stop(self, port: int, facts: dict[str, Any]) -> None:
        """Stop the slot's runtime and remove everything start created; fine if already gone."""

    @abstractmethod
    def status(self, port: int, facts: dict[str, Any]) -> str:
        """``running``, ``starting``, ``exited`` (ended cleanly, e.g. after a shutdown request), ``died`` or ``missing``."""


def backend_from_settings() -> RuntimeBackend:
    name = settings().backend
    if name == "local":
        from lambdas.vaas.backends.local import LocalBackend

        return LocalBackend.from_settings()
    if name == "kubernetes":
        from lambdas.vaas.backends.kubernetes import KubernetesBackend

        return KubernetesBackend.from_settings()
    raise RuntimeError(f"IPOC_VAAS_BACKEND must be 'local' or 'kubernetes', not {name!r}")
