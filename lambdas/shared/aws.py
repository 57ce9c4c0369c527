"""boto3 clients and resources, made once per process.

Endpoints come from boto3's own configuration (``AWS_ENDPOINT_URL`` and
friends), which is how the local stack points every handler at moto without
the handlers knowing.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# A Lambda environment makes one call at a time; the local stack's API process runs many invocations at
# once on threads sharing these clients, and past the pool size each call would open a connection of its own.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, signature_version="s3v4", max_pool_connections=64)


@cache
def session() -> boto3.session.Session:
    """The process's one Session: making one loads botocore's models (~100 ms); its clients are cheap."""
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    # boto3-stubs type client() per service-name literal; the name here is a run-time string.
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@cache
def table(name: str) -> Any:
    return boto3.session.Session().resource("dynamodb", config=_CONFIG).Table(name)


def reset() -> None:
    """Forget cached clients (tests that switch endpoints or credentials)."""
    session.cache_clear()
    client.cache_clear()
    table.cache_clear()
