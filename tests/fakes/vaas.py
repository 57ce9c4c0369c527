"""A VaaS runtime backend in memory, for VaaS's own logic without runtime processes."""

from __future__ import annotations

from typing import Any

from ipoc.certs import new_identity
from lambdas.vaas.backends import RuntimeBackend, RuntimeSetup


class RacingBackend(RuntimeBackend):
    """Starts 'runtimes' in memory; the first start lets ``meanwhile`` run before it returns (a slow start)."""

    def __init__(self) -> None:
        self.running: dict[int, str] = {}
        self.meanwhile: Any = None
        self.proxy = new_identity("proxy")

    def runtime_setup(self) -> RuntimeSetup:
        return RuntimeSetup("127.0.0.1:3010", self.proxy.certificate, "ab" * 32, "linux", "127.0.0.1")

    def start(self, port: int, policy_text: str, labels: dict[str, str]) -> dict[str, Any]:
        hook, self.meanwhile = self.meanwhile, None
        if hook is not None:
            hook()
        self.running[port] = labels["veracruz-hash"]
        return {"runtime": labels["veracruz-hash"]}

    def stop(self, port: int, facts: dict[str, Any]) -> None:
        self.running.pop(port, None)

    def status(self, port: int, facts: dict[str, Any]) -> str:
        return "running" if port in self.running else "missing"
