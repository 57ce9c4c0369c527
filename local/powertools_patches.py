"""Fidelity fix for Powertools' event handler when the local stack serves concurrent requests.

In Lambda an execution environment handles one event at a time, so Powertools
keeps the current request in shared places: the event and Lambda context in
class attributes of ``BaseRouter`` (every resolver and router reads them), the
routing context (the matched route, its arguments) in a dict on the resolver.
The local adapter serves concurrent requests with threads, as Lambda serves them
with several environments; with that shared state one request could be answered
with another's event (observed: a ``POST /function`` answered 201 for a name it
never wrote). Here each of those becomes per thread, so a thread is one
environment.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from local.patching import mark

_state = threading.local()


def thread_local_requests() -> None:
    """Make the current event, Lambda context and routing context of every resolver per thread (idempotent)."""
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    if getattr(ApiGatewayResolver, "_ipoc_thread_local", False):
        return
    original_resolve = ApiGatewayResolver.resolve

    def _values(resolver: Any) -> dict[str, Any]:
        """This thread's values of one resolver."""
        by_resolver: dict[int, dict[str, Any]] = _state.__dict__.setdefault("by_resolver", {})
        return by_resolver.setdefault(id(resolver), {})

    def _get(self: Any, name: str, default: Any) -> Any:
        values = _values(self)
        if name not in values:
            values[name] = default() if callable(default) else default
        return values[name]

    def _set(self: Any, name: str, value: Any) -> None:
        _values(self)[name] = value

    def per_thread(name: str, default: Any) -> property:
        return property(lambda self: _get(self, name, default), lambda self, value: _set(self, name, value))

    @functools.wraps(original_resolve)
    def resolve(self: Any, event: Any, context: Any) -> Any:
        # Set this thread's values first: the original also writes BaseRouter's class attributes,
        # which every reader below ApiGatewayResolver in the MRO no longer sees.
        self.current_event = self._to_proxy_event(event if isinstance(event, dict) else event.raw_event)
        self.lambda_context = context
        return original_resolve(self, event, context)

    # Powertools' resolver patched in place: its declared attributes become per-thread properties.
    ApiGatewayResolver.current_event = per_thread("current_event", None)  # type: ignore[assignment]
    ApiGatewayResolver.lambda_context = per_thread("lambda_context", None)  # type: ignore[assignment]
    ApiGatewayResolver.context = per_thread("context", dict)  # type: ignore[assignment]
    ApiGatewayResolver.processed_stack_frames = per_thread("processed_stack_frames", list)  # type: ignore[assignment]
    ApiGatewayResolver.resolve = resolve  # type: ignore[method-assign]  # Powertools patched in place
    mark(ApiGatewayResolver, "_ipoc_thread_local")
