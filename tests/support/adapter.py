"""The local API adapter (what stands in for API Gateway) serving a test's own handler in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from local.adapter import ApiServer, Handler


@contextmanager
def running_api(
    name: str, handler: Handler, openapi: Callable[[], dict[str, Any]] = dict, **timeouts: float
) -> Iterator[ApiServer]:
    """``handler`` behind an :class:`ApiServer` named ``name`` (its access log lines start with it) on a port
    the kernel picks, serving until the block ends; ``timeouts`` are ApiServer's read and integration ones."""
    api = ApiServer("127.0.0.1", 0, name, handler, openapi, **timeouts)
    api.start()
    try:
        yield api
    finally:
        api.stop()
