"""Turn an HTTP request into the event API Gateway sends (REST API, Lambda proxy integration), and back.

The local stack serves each API through this adapter, so handlers receive
exactly what they receive in AWS. The caller's identity, which IAM
authorization provides in AWS, comes from the ``X-Ipoc-Local-User`` header
here: matched case-insensitively as every HTTP header; absent means the local
administrator; an empty or malformed value is refused (it never falls back to
the administrator).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ACCOUNT = "000000000000"
LOCAL_ADMIN = "local-admin"
USER_HEADER = "X-Ipoc-Local-User"
MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway's request payload limit
INTEGRATION_TIMEOUT = 29.0  # seconds: API Gateway's (REST API) default maximum integration timeout
_TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")
_USER_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")  # IAM's user-name characters and length


class IdentityRefused(Exception):
    """The user header is present but names nobody (or two people): the request gets this status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def take_user(headers: Iterable[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """Split the caller's user name from the request's headers (as received, repeats included).

    HTTP header names are case-insensitive, so ``x-ipoc-local-user`` is the same header. No header
    at all is the local administrator (the developer's own machine); a header that is present but
    empty, malformed or repeated with different values is refused, never read as the administrator.
    Every spelling of the header is removed, so handlers see no trace of it, as behind API Gateway.
    """
    values: list[str] = []
    others: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == USER_HEADER.lower():
            values.append(value.strip())
        else:
            others[name] = value
    if not values:
        return LOCAL_ADMIN, others
    if len(set(values)) > 1:
        raise IdentityRefused(400, "ValidationError", f"{USER_HEADER} was sent more than once with different values")
    user = values[0]
    if not user:
        raise IdentityRefused(
            403, "Forbidden", f"{USER_HEADER} is empty: name a user, or leave the header out to act as {LOCAL_ADMIN}"
        )
    if not _USER_NAME.match(user):
        raise IdentityRefused(
            400, "ValidationError", f"{USER_HEADER} must be 1-64 letters, digits or +=,.@_- (an IAM user name)"
        )
    return user, others


def principal_arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{user}"


def build_event(
    method: str,
    raw_path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    user: str = LOCAL_ADMIN,
    source_ip: str = "127.0.0.1",
    stage: str = "local",
) -> dict[str, Any]:
    """The REST API proxy event for one request, as API Gateway builds it."""
    parts = urlsplit(raw_path)
    headers = dict(headers or {})
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    is_text = (not body) or content_type.startswith(_TEXT_TYPES) and _is_utf8(body)
    request_id = str(uuid.uuid4())
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method.upper(),
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "httpMethod": method.upper(),
            "path": f"/{stage}{parts.path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "resourcePath": parts.path,
            "stage": stage,
            "identity": {
                "accountId": ACCOUNT,
                "caller": user,
                "sourceIp": source_ip,
                "user": user,
                "userArn": principal_arn(user),
                "userAgent": headers.get("User-Agent", ""),
            },
        },
        "body": (body.decode("utf-8") if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


def response_parts(result: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A proxy integration result → (status, headers, body bytes)."""
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return int(result.get("statusCode", 502)), headers, data


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
