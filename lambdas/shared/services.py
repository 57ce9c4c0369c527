"""Services built once per process and handed to each request, instead of built inside every route.

A Lambda's handler puts its package's container into the resolver's context
(Powertools' ``app.append_context``) before resolving; routes read it back with
:func:`from_context`. A container is made once per :class:`Settings` value (a
warm Lambda has one), and each service in it on first use, inside the request
that needs it, so a service that cannot be built still fails as that request's
JSON error.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Self, TypeVar

from lambdas.shared.config import Settings, settings

CONTEXT_KEY = "services"  # the handlers: app.append_context(services=...)
S = TypeVar("S", bound="Services")


class Services:
    """The base of each package's container: its settings; subclasses add services as ``cached_property``."""

    def __init__(self, config: Settings) -> None:
        self.settings = config

    @classmethod
    def current(cls) -> Self:
        """The container for this process's settings (the same object for as long as they stay the same)."""
        # mypy checks a type variable's class object against Hashable through its instances' methods; classes hash.
        container = _container(cls, settings())  # type: ignore[arg-type]
        assert isinstance(container, cls)
        return container


@lru_cache(maxsize=16)
def _container(cls: type[Services], config: Settings) -> Services:
    return cls(config)


def from_context(router: Any, cls: type[S]) -> S:
    """The container the handler put into this request's context."""
    container = router.context[CONTEXT_KEY]
    assert isinstance(container, cls), f"the handler gave {type(container).__name__}, not {cls.__name__}"
    return container
