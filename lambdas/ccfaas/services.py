"""CCFaaS's services: the registry and the instances, built once per process (``lambdas.shared.services``)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from lambdas.ccfaas.instances import Instances
from lambdas.ccfaas.registry import Registry
from lambdas.shared.services import Services, from_context


class CcfaasServices(Services):
    @cached_property
    def registry(self) -> Registry:
        return Registry.from_settings()

    @cached_property
    def instances(self) -> Instances:
        return Instances(self.registry.instances, self.registry)


def services(router: Any) -> CcfaasServices:
    """This request's CCFaaS services (the handler put them in the resolver's context)."""
    return from_context(router, CcfaasServices)
