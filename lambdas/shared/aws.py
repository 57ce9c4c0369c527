"""boto3 clients and resources, made once per process.

Endpoints come from boto3's own configuration (``AWS_ENDPOINT_URL`` and
friends), which is how the local stack points every handler at moto without
the handlers knowing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import zlib
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import botocore.auth
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.auth import SIGV4_TIMESTAMP
from botocore.awsrequest import AWSPreparedRequest, HeadersDict
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from botocore.hooks import first_non_none_response
from botocore.utils import normalize_url_path

# A Lambda environment makes one call at a time; the local stack's API process runs many invocations at
# once on threads sharing these clients, and past the pool size each call would open a connection of its own.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, signature_version="s3v4", max_pool_connections=64)


# A Session is not thread-safe: clients and resources are made from the shared one under this lock (the
# local stack's API threads may ask for their first client at once).
_MAKING = threading.Lock()


@cache
def session() -> boto3.session.Session:
    """The process's one Session: making one loads botocore's models (~100 ms); its clients are cheap
    (~5 ms from a Session that already has them, ~140 ms of CPU each from a new Session)."""
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    with _MAKING:
        # boto3-stubs type client() per service-name literal; the name here is a run-time string.
        return session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def new_client(service: str, **kwargs: Any) -> Any:
    """A client of its own (other credentials, region or config), made from the shared Session."""
    with _MAKING:
        return session().client(service, **kwargs)  # type: ignore[call-overload]


@cache
def table(name: str) -> Any:
    with _MAKING:
        return session().resource("dynamodb", config=_CONFIG).Table(name)


def get_item(dynamodb_table: Any, key: dict[str, Any]) -> dict[str, Any] | None:
    """``dynamodb_table.get_item(Key=key, ConsistentRead=True).get("Item")``, for about half its CPU.

    Every control-plane read is one such call, and boto3's pipeline was most of a read's CPU (~1.4 ms:
    parameter validation, a dozen event hooks, endpoint rules, the retry handler, a serializer and a parser
    that walk the shape model, boto3's type transforms). This sends the same request with the table's own
    client's endpoint, region, credentials, connection pool and ``before-send`` hooks (where moto's
    in-process mock answers), signed with SigV4 as botocore signs it, and reads the answer with
    ``json.loads``. Anything but a 200 whose CRC32 matches is asked again through boto3, which retries and
    raises as it always does. A strongly consistent read of DynamoDB, every time: nothing is cached.
    (botocore's ``Stubber`` answers at ``before-call``, which this does not emit: stub with moto.) Where
    X-Ray traces botocore (Powertools' Tracer in AWS, where tracing is on), boto3 makes the call, so that
    traces keep their DynamoDB subsegments; the local stack does not trace.
    """
    if _traced():  # X-Ray records each botocore call as a subsegment (with its table and operation): keep that
        return dynamodb_table.get_item(Key=key, ConsistentRead=True).get("Item")
    try:
        return _GetItem.of(dynamodb_table.meta.client).item(dynamodb_table.name, key)
    except (_Unanswered, BotoCoreError, ValueError, KeyError, TypeError, AttributeError):  # botocore internals moved
        return dynamodb_table.get_item(Key=key, ConsistentRead=True).get("Item")


def _traced() -> bool:
    """X-Ray's SDK has patched botocore (it records every API call as a subsegment)."""
    patcher = sys.modules.get("aws_xray_sdk.core.patcher")
    return patcher is not None and "botocore" in getattr(patcher, "_PATCHED_MODULES", ())


class _Unanswered(Exception):
    """The lean GetItem got no usable answer: boto3 asks again (and retries, and raises, as it does)."""


class _GetItem:
    """One client's GetItem request without botocore's per-call pipeline (built once per client)."""

    _HEADERS = {"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0"}

    def __init__(self, dynamodb: Any) -> None:
        self.client = dynamodb
        self.operation = dynamodb.meta.service_model.operation_model("GetItem")
        self.urls: dict[str, str] = {}  # by table: the endpoint rules' answer (account-based, FIPS, dual-stack)
        self.region = dynamodb.meta.region_name
        self.events = dynamodb.meta.events
        self.http = dynamodb._endpoint.http_session  # the client's own pool (TLS, proxies, limits as configured)
        self.credentials = dynamodb._get_credentials()  # what the client signs with (refreshed as it refreshes)
        self.serializer, self.deserializer = TypeSerializer(), _WireDeserializer()
        self._key: tuple[str, str, bytes] | None = None  # (secret, day, SigV4 signing key)

    @staticmethod
    @cache
    def of(dynamodb: Any) -> _GetItem:
        return _GetItem(dynamodb)

    def item(self, table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        if self.credentials is None:
            raise _Unanswered("no credentials")
        body = json.dumps(
            {
                "TableName": table_name,
                "Key": {name: self.serializer.serialize(value) for name, value in key.items()},
                "ConsistentRead": True,
            },
            default=_base64,
        ).encode()
        prepared = self.signed(self.url(table_name), body)
        response = first_non_none_response(self.events.emit("before-send.dynamodb.GetItem", request=prepared))
        if response is None:
            response = self.http.send(prepared)
        content = response.content
        checksum = response.headers.get("x-amz-crc32")
        if response.status_code != 200 or (checksum is not None and int(checksum) != zlib.crc32(content)):
            raise _Unanswered(f"GetItem answered {response.status_code}")
        item = json.loads(content).get("Item")
        return None if item is None else {name: self.deserializer.deserialize(v) for name, v in item.items()}

    def signed(self, url: str, body: bytes) -> AWSPreparedRequest:
        """The request botocore's ``SigV4Auth.add_auth`` and ``AWSRequest.prepare`` make of this POST, for a
        tenth of their CPU: the headers are known (no canonicalising per call) and the signing key, which
        depends only on the secret, the day, the region and the service, is derived once a day, not per call.
        tests/unit/lambdas/test_aws_get_item.py checks the bytes against botocore's own."""
        credentials = self.credentials.get_frozen_credentials()
        now = botocore.auth.get_current_datetime()  # type: ignore[attr-defined]  # botocore's clock (not in its stubs)
        timestamp = now.strftime(SIGV4_TIMESTAMP)
        day = timestamp[:8]
        headers = {**self._HEADERS, "X-Amz-Date": timestamp}
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
        host, path = self._where(url)
        signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
        signed["host"] = host
        names = sorted(signed)
        canonical = "\n".join(
            (
                "POST",
                path,
                "",  # no query
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                hashlib.sha256(body).hexdigest(),
            )
        )
        scope = f"{day}/{self.region}/dynamodb/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(credentials.secret_key, day), to_sign.encode(), hashlib.sha256)
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature.hexdigest()}"
        )
        headers["Content-Length"] = str(len(body))
        # AWSRequest.prepare gives a HeadersDict too (the stubs say HTTPHeaders)
        return AWSPreparedRequest("POST", url, HeadersDict(headers), body, False)  # type: ignore[arg-type]

    def _signing_key(self, secret: str, day: str) -> bytes:
        """SigV4's derived key (four HMACs), kept for the day it was made for."""
        kept = self._key
        if kept is not None and kept[0] == secret and kept[1] == day:
            return kept[2]
        key = f"AWS4{secret}".encode()
        for part in (day, self.region, "dynamodb", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._key = (secret, day, key)
        return key

    @staticmethod
    @cache
    def _where(url: str) -> tuple[str, str]:
        """The Host header and canonical path botocore signs for ``url`` (the same functions it uses)."""
        parts = urlsplit(url)
        if parts.query:
            raise _Unanswered("an endpoint with a query string")  # never made by the endpoint rules
        host = botocore.auth._host_from_url(url)  # type: ignore[attr-defined]  # botocore's own (private)
        return host, quote(normalize_url_path(parts.path), safe="/~")  # as SigV4Auth._normalize_url_path

    def url(self, table_name: str) -> str:
        """Where boto3 sends this table's GetItem: the client's endpoint rules decide (with an account id in
        the credentials that is ``<account>.ddb.<region>...``, not ``meta.endpoint_url``); resolved once."""
        url = self.urls.get(table_name)
        if url is None:
            resolved = self.client._resolve_endpoint_ruleset(self.operation, {"TableName": table_name}, {})
            url = self.urls[table_name] = resolved[0].rstrip("/") + "/"
        return url


class _WireDeserializer(TypeDeserializer):
    """boto3's deserializer for DynamoDB JSON as it travels: binary values are base64 there (botocore's
    parser decodes them before boto3 sees them)."""

    def _deserialize_b(self, value: str) -> Binary:
        return Binary(base64.b64decode(value))

    def _deserialize_bs(self, value: list[str]) -> set[Binary]:
        return {self._deserialize_b(v) for v in value}


def _base64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not DynamoDB JSON")


def reset() -> None:
    """Forget cached clients (tests that switch endpoints or credentials)."""
    session.cache_clear()
    client.cache_clear()
    table.cache_clear()
    _GetItem.of.cache_clear()
