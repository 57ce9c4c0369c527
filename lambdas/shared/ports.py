"""Ports: how the instance lifecycle reaches VaaS and the S3 streamer without importing them.

The services sit side by side (``lambdas/ccfaas``, ``lambdas/vaas``, ``lambdas/s3stream``) and none imports
another. The lifecycle needs two things from its neighbours: runtimes (allocate, look at, give back) and a
stream of an S3 object into a runtime. It asks this module for them; the deployment decides what answers.

Both deployments (``infra/`` on AWS, ``local/``) ship every service in one code bundle and run these
in-process, so :data:`DEPLOYED` names the entry points they use, resolved by name on first use as Lambda
resolves a handler. A test, or a deployment that reaches them otherwise, calls :func:`wire` instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol


class Runtimes(Protocol):
    """VaaS as the lifecycle uses it: the same calls as its API (``POST``/``GET``/``DELETE /veracruz``)."""

    def create(self, vaas_policy: Any) -> dict[str, Any]:
        """Take a slot and start a runtime; the reply carries ``policy`` (the exact text) and ``instance_hash``."""
        ...

    def starts_at_once(self) -> bool:
        """Whether a runtime started and attested ahead (a warm pool's) is ready to be handed out now."""
        ...

    def show(self, name: str, instance_id: str | None = None, instance_hash: str | None = None) -> dict[str, Any]:
        """The runtime's ``status`` (``OK``, ``STARTING``, ``EXITED``, ...); NotFound when it is gone."""
        ...

    def delete(self, name: str, instance_id: str | None = None, instance_hash: str | None = None) -> dict[str, Any]:
        """Stop the runtime and free its slot; NotFound when it is already gone."""
        ...


class Streamer(Protocol):
    """The S3 streamer as the lifecycle uses it: copy ``s3://bucket/key`` into ``filename`` of the runtime
    whose exact policy text is ``policy``, as the identity given, after verifying the runtime."""

    def __call__(
        self,
        *,
        bucket: str,
        key: str,
        region: str | None,
        filename: str,
        policy: str,
        certificate: str,
        private_key: str,
        chunk_size: int,
    ) -> dict[str, Any]: ...


# What each port is in the deployed bundle: "module:attribute[.attribute]", a factory taking no arguments.
DEPLOYED: dict[str, str] = {
    "runtimes": "lambdas.vaas.service:VaaS.from_settings",
    "streamer": "lambdas.s3stream.streamer:streamer",
}

_wired: dict[str, Callable[[], Any]] = {}


def wire(**factories: Callable[[], Any]) -> None:
    """Let ``factories`` (by port name, each taking no arguments) answer instead of :data:`DEPLOYED`."""
    unknown = set(factories) - set(DEPLOYED)
    if unknown:
        raise ValueError(f"no such port: {', '.join(sorted(unknown))} (ports: {', '.join(DEPLOYED)})")
    _wired.update(factories)


def unwire() -> None:
    """Back to the deployed wiring."""
    _wired.clear()


def runtimes() -> Runtimes:
    return _build("runtimes")


def streamer() -> Streamer:
    return _build("streamer")


def _build(port: str) -> Any:
    factory = _wired.get(port)
    if factory is None:
        module, _, path = DEPLOYED[port].partition(":")
        found: Any = importlib.import_module(module)
        for attribute in path.split("."):
            found = getattr(found, attribute)
        factory = found
    return factory()
