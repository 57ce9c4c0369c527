"""HTTP calls to the three APIs for the CLI: JSON in and out, errors as one clear exception.

Local profiles name the caller in the local adapter's header; AWS profiles sign
every request with SigV4 (service ``execute-api``) using botocore's credential chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests

from client.profiles import Profile

USER_HEADER = "X-Ipoc-Local-User"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status} {code})")
        self.status, self.code, self.message = status, code, message


@dataclass
class Api:
    profile: Profile
    timeout: float = 120.0

    def call(self, service: str, method: str, path: str, *, body: Any = None, data: bytes | None = None,
             params: dict[str, str] | None = None, expect: tuple[int, ...] = (200, 201, 202)) -> Any:
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
        except requests.RequestException as exc:
            raise ApiError(0, "Unreachable", f"cannot reach {service} at {self.profile.endpoint(service)}: {exc}") from None
        try:
            document = reply.json()
        except ValueError:
            document = {"error": "BadResponse", "message": reply.text[:300] or "empty response"}
        if reply.status_code not in expect:
            raise ApiError(reply.status_code, document.get("error", "Error"), document.get("message", str(document)))
        return document

    def _sign(self, prepared: requests.PreparedRequest) -> None:
        import botocore.session
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = botocore.session.Session().get_credentials()
        if credentials is None:
            raise ApiError(0, "NoCredentials", "no AWS credentials found for the aws profile (aws configure, or AWS_* variables)")
        request = AWSRequest(method=prepared.method, url=prepared.url, data=prepared.body, headers=dict(prepared.headers))
        SigV4Auth(credentials, "execute-api", self.profile.region).add_auth(request)
        prepared.headers.update(dict(request.headers))
