"""HTTP calls to the three APIs for the CLI: JSON in and out, errors as one clear exception.

Local profiles name the caller in the local adapter's header; AWS profiles sign
every request with SigV4 (service ``execute-api``) using botocore's credential chain.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from client.profiles import Profile

USER_HEADER = "X-Ipoc-Local-User"
STACK_DOWN = "the local stack is not running — start it with `ipoc local up`"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status} {code})")
        self.status, self.code, self.message = status, code, message


class Unreachable(ApiError):
    """Nothing answered at the profile's endpoint: the message says which and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Unreachable", message)


def unreachable(
    profile: Profile, service: str, exc: Exception | None = None, timeout: float | None = None
) -> Unreachable:
    """One line for an endpoint that did not answer: a local stack that is down, or which aws endpoint."""
    endpoint = profile.endpoint(service)
    if isinstance(exc, requests.Timeout):
        reason = f"no reply within {timeout:g} s" if timeout else "timed out"
    else:
        found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc)) if exc else None
        reason = (
            found.group(1).strip().lower() if found else "connection refused" if exc is None else type(exc).__name__
        )
    if profile.kind == "local":
        if reason == "connection refused":
            return Unreachable(STACK_DOWN)
        return Unreachable(
            f"the local stack's {service} at {endpoint} did not answer ({reason}); `ipoc local status` says why"
        )
    return Unreachable(f"profile {profile.name!r} endpoint {endpoint} did not answer ({reason})")


@dataclass
class Api:
    profile: Profile
    timeout: float = 120.0

    def check_reachable(self) -> None:
        """For a local profile, fail at once with ``STACK_DOWN`` when the stack does not accept connections."""
        if self.profile.kind != "local":
            return
        from ipoc.wire.carrier import port_open

        parts = urlsplit(self.profile.endpoint("ccfaas"))
        if not port_open(parts.hostname or "127.0.0.1", parts.port or 80, timeout=2):
            raise unreachable(self.profile, "ccfaas")

    def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200, 201, 202),
    ) -> Any:
        url = self.profile.endpoint(service) + path
        headers: dict[str, str] = {}
        payload = data
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            headers["Content-Type"] = "application/octet-stream"
        if self.profile.kind == "local":
            headers[USER_HEADER] = self.profile.user
        prepared = requests.Request(method, url, headers=headers, data=payload, params=params).prepare()
        if self.profile.kind == "aws":
            self._sign(prepared)
        try:
            reply = requests.Session().send(prepared, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise unreachable(self.profile, service, exc, self.timeout) from None
        except requests.RequestException as exc:
            raise ApiError(
                0, "RequestFailed", f"the request to {service} at {self.profile.endpoint(service)} failed: {exc}"
            ) from None
        try:
            document = reply.json()
        except ValueError:
            document = {"error": "BadResponse", "message": reply.text[:300] or "empty response"}
        if reply.status_code not in expect:
            message = document.get("message", str(document))
            if reply.status_code == 500 and self.profile.kind == "local":  # one of the stack's parts may be down
                message += "; `ipoc local status` says whether each part of the local stack is running"
            raise ApiError(reply.status_code, document.get("error", "Error"), message)
        return document

    def _sign(self, prepared: requests.PreparedRequest) -> None:
        import botocore.session
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = botocore.session.Session().get_credentials()
        if credentials is None:
            raise ApiError(
                0, "NoCredentials", "no AWS credentials found for the aws profile (aws configure, or AWS_* variables)"
            )
        request = AWSRequest(
            method=prepared.method, url=prepared.url, data=prepared.body, headers=dict(prepared.headers)
        )
        SigV4Auth(credentials, "execute-api", self.profile.region).add_auth(request)
        prepared.headers.update(dict(request.headers))
