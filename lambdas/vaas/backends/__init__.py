"""Where runtimes run, named by ``IPOC_VAAS_BACKEND``: ``kubernetes`` (EKS pods, shipped with the Lambdas) or a
backend the deployment registers, e.g. ``local`` (runtime processes on this machine, ``local.runtimes``).

VaaS does not import a deployment: the embedded one calls :func:`register` for its backend when it starts,
so a handler does not know which deployment runs it, and the Lambda package carries no process manager.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
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

    def has_warm_runtime(self) -> bool:
        """Whether :meth:`start` would now hand over a runtime started and attested ahead (a warm pool's)."""
        return False

    @abstractmethod
    def status(self, port: int, facts: dict[str, Any]) -> str:
        """``running``, ``starting``, ``exited``, ``died`` or ``missing``.

        ``exited`` means it ended cleanly, e.g. after a shutdown request.
        """


def _kubernetes() -> RuntimeBackend:
    from lambdas.vaas.backends.kubernetes import KubernetesBackend

    return KubernetesBackend.from_settings()


_factories: dict[str, Callable[[], RuntimeBackend]] = {
    "kubernetes": _kubernetes
}  # registered at start, read per request


def register(name: str, factory: Callable[[], RuntimeBackend]) -> None:
    """Make ``IPOC_VAAS_BACKEND=name`` build its backend with ``factory`` (called per request, from settings)."""
    _factories[name] = factory


def backend_from_settings() -> RuntimeBackend:
    name = settings().backend
    factory = _factories.get(name)
    if factory is None:
        raise RuntimeError(
            f"IPOC_VAAS_BACKEND={name!r} names no backend this process has ({', '.join(sorted(_factories))}): "
            "the deployment registers its own (lambdas.vaas.backends.register) when it starts"
        )
    return factory()
