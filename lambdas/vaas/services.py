"""VaaS's service (its slots and runtime backend), built once per process (``lambdas.shared.services``)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from lambdas.shared.services import Services, from_context
from lambdas.vaas.service import VaaS


class VaasServices(Services):
    @cached_property
    def vaas(self) -> VaaS:
        return VaaS.from_settings()


def services(router: Any) -> VaasServices:
    """This request's VaaS services (the handler put them in the resolver's context)."""
    return from_context(router, VaasServices)
