"""``local.moto_patches.direct_dynamodb``: DynamoDB requests handed straight to moto's handler, and plain
GetItems answered from moto's backend, get the answers moto's own server app (its domain dispatcher and Flask
app) gives, byte for byte; other requests reach that app.

The oracle is moto's server app itself, fed the same requests from the same starting state.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import EnvironBuilder

from lambdas.shared.tables import FUNCTIONS, INSTANCES
from local import moto_patches
from local.aws_server import create_table
from tests.support.sockets import read_http_answer

AUTH = "AWS4-HMAC-SHA256 Credential=local/20261129/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
KEY = {"instance_id": {"S": "i-1"}}
ITEM = {**KEY, "status": {"S": "READY"}, "n": {"N": "3"}, "blob": {"B": "AAEC"}, "tags": {"SS": ["a", "b"]}}
EVERY_TYPE = {
    "instance_id": {"S": "every-type"},
    "text": {"S": 'naïve ✓ "quoted"'},
    "empty": {"S": ""},
    "n": {"N": "-12.50"},
    "big": {"N": "123456789012345678901234567890"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "blob": {"B": "AP8="},
    "numbers": {"NS": ["1", "2.5"]},
    "blobs": {"BS": ["AA==", "AQ=="]},
    "nested": {"M": {"list": {"L": [{"N": "1"}, {"S": "two"}, {"M": {"deep": {"BOOL": False}}}]}}},
}
VERSION_KEY = {"function": {"S": "vod"}, "item": {"S": "v1"}}


def dynamodb(operation: str, body: Any) -> dict[str, Any]:
    return EnvironBuilder(
        path="/",
        method="POST",
        data=json.dumps(body).encode(),
        headers=[
            ("X-Amz-Target", f"DynamoDB_20120810.{operation}"),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Authorization", AUTH.format(service="dynamodb")),
            ("Host", "127.0.0.1:5055"),
        ],
    ).get_environ()


def get(table: str, key: dict[str, Any], **extra: Any) -> tuple[str, dict[str, Any]]:
    return "GetItem", {"TableName": table, "Key": key, **extra}


# (operation, body, answered by moto's handler rather than from the backend directly)
REQUESTS: list[tuple[str, dict[str, Any], bool]] = [
    ("PutItem", {"TableName": "records", "Item": ITEM}, True),
    ("PutItem", {"TableName": "records", "Item": EVERY_TYPE}, True),
    ("PutItem", {"TableName": "versions", "Item": {**VERSION_KEY, "latest": {"N": "1"}}}, True),
    (
        "PutItem",
        {"TableName": "records", "Item": ITEM, "ConditionExpression": "attribute_not_exists(instance_id)"},
        True,
    ),
    (*get("records", KEY, ConsistentRead=True), False),
    (*get("records", KEY), False),
    (*get("records", {"instance_id": {"S": "every-type"}}, ConsistentRead=True), False),
    (*get("records", {"instance_id": {"S": "nobody"}}, ConsistentRead=True), False),
    (*get("versions", VERSION_KEY, ConsistentRead=True), False),
    (*get("versions", {"function": {"S": "vod"}}), True),  # no sort key: moto's ValidationException
    (*get("records", KEY, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"}), True),
    (*get("records", KEY, ReturnConsumedCapacity="TOTAL"), True),
    (*get("no-such-table", KEY), True),
    (*get("records", {"wrong": {"S": "x"}}), True),
    (*get("records", {**KEY, "status": {"S": "READY"}}), True),
    (*get("records", {"instance_id": {"S": ""}}), True),
    (*get("records", {"instance_id": {"N": "5"}}), False),
    (*get("records", KEY, ConsistentRead="yes"), True),
    (
        "UpdateItem",
        {
            "TableName": "records",
            "Key": KEY,
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "UPDATED_NEW",
        },
        True,
    ),
    (*get("records", KEY, ConsistentRead=True), False),
    (
        "Query",
        {
            "TableName": "records",
            "KeyConditionExpression": "instance_id = :k",
            "ExpressionAttributeValues": {":k": {"S": "i-1"}},
        },
        True,
    ),
    ("Scan", {"TableName": "records"}, True),
    ("DeleteItem", {"TableName": "records", "Key": KEY, "ReturnValues": "ALL_OLD"}, True),
    (*get("records", KEY, ConsistentRead=True), False),
]


def answers(app: Any) -> list[tuple[str, dict[str, str], bytes]]:
    """Each request's status, headers (but its request id and date) and body, from a fresh moto."""
    with mock_aws():
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        for spec, name in ((INSTANCES, "records"), (FUNCTIONS, "versions")):
            create_table(backend, spec, name)
        got = []
        for operation, body, _ in REQUESTS:
            reply: dict[str, Any] = {}
            chunks = app(
                dynamodb(operation, body), lambda status, headers, *_, reply=reply: reply.update(s=status, h=headers)
            )
            request_ids = [v for k, v in reply["h"] if k.lower() == "x-amzn-requestid"]
            assert len(request_ids) == 1 and re.fullmatch("[A-Za-z0-9]{52}", request_ids[0])  # random: compared by form
            headers = {k.lower(): v for k, v in reply["h"] if k.lower() not in ("x-amzn-requestid", "date")}
            got.append((reply["s"], headers, b"".join(chunks)))
        return got


@pytest.fixture
def moto_app(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_patches.fast_dynamodb_reads()  # as the local AWS runs: both sides the same
    return DomainDispatcherApplication(create_backend_app)


def test_dynamodb_answers_are_moto_servers_own(moto_app, monkeypatch):
    through_moto = answers(moto_app)
    reached: list[str] = []
    handled: list[bool] = []
    original = DynamoHandler.dispatch

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(environ["PATH_INFO"])
        return moto_app(environ, start_response)

    def handler_dispatch(*args: Any, **kwargs: Any) -> Any:
        handled[-1] = True
        return original(*args, **kwargs)

    app = moto_patches.direct_dynamodb(spy)

    def direct(environ: dict[str, Any], start_response: Any) -> Any:
        handled.append(False)
        return app(environ, start_response)

    monkeypatch.setattr(DynamoHandler, "dispatch", handler_dispatch)
    ours = answers(direct)
    assert reached == []  # every one went straight to DynamoDB
    for (operation, body, by_handler), mine, theirs, was_handled in zip(
        REQUESTS, ours, through_moto, handled, strict=True
    ):
        assert mine == theirs, (operation, body)
        assert was_handled == by_handler, (operation, body)
    statuses = {status.split()[0] for status, _, _ in ours}
    assert statuses == {"200", "400"}  # errors were compared too


def test_other_requests_reach_moto_servers_app(moto_app):
    reached: list[str] = []

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(environ.get("HTTP_X_AMZ_TARGET", environ["PATH_INFO"]))
        return moto_app(environ, start_response)

    app = moto_patches.direct_dynamodb(spy)
    streams = dynamodb("ListStreams", {})
    streams["HTTP_X_AMZ_TARGET"] = "DynamoDBStreams_20120810.ListStreams"
    unsigned = dynamodb("ListTables", {})
    del unsigned["HTTP_AUTHORIZATION"]
    browser = dynamodb("ListTables", {})
    browser["HTTP_ORIGIN"] = "http://localhost:8080"  # flask-cors answers those
    s3 = EnvironBuilder(path="/", method="GET", headers={"Authorization": AUTH.format(service="s3")}).get_environ()
    with mock_aws():
        for environ in (streams, unsigned, browser, s3):
            b"".join(app(environ, lambda *_: None))
    assert reached == [
        "DynamoDBStreams_20120810.ListStreams",
        "DynamoDB_20120810.ListTables",
        "DynamoDB_20120810.ListTables",
        "/",
    ]


def test_the_local_aws_answers_over_http_as_moto_servers_app(moto_app, monkeypatch):
    """The local AWS's HTTP server answers plain GetItems itself (``aws_server.keep_alive_server``: no
    http.server parsing, no WSGI app) and everything else through the app: over a real kept-alive connection,
    every answer is moto's server app's own (status, headers but the request id and date, body)."""
    import socket
    import threading

    from local import aws_server

    want = answers(moto_app)
    reached_app: list[str] = []
    original = moto_patches.direct_dynamodb

    def spied(app: Any) -> Any:
        direct = original(app)

        def spy(environ: dict[str, Any], start_response: Any) -> Any:
            data = environ["wsgi.input"].read()
            reached_app.append(json.loads(data or b"{}").get("TableName", "?"))
            environ["wsgi.input"] = io.BytesIO(data)
            return direct(environ, start_response)

        return spy

    monkeypatch.setattr(moto_patches, "direct_dynamodb", spied)
    with mock_aws():
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        for spec, name in ((INSTANCES, "records"), (FUNCTIONS, "versions")):
            create_table(backend, spec, name)
        server = aws_server.keep_alive_server("127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        got = []
        try:
            with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
                for operation, body, _ in REQUESTS:
                    data = json.dumps(body).encode()
                    sock.sendall(
                        (
                            "POST / HTTP/1.1\r\nHost: 127.0.0.1:5055\r\n"
                            f"X-Amz-Target: DynamoDB_20120810.{operation}\r\n"
                            f"Content-Type: application/x-amz-json-1.0\r\n"
                            f"Authorization: {AUTH.format(service='dynamodb')}\r\nContent-Length: {len(data)}\r\n\r\n"
                        ).encode()
                        + data
                    )
                    got.append(_http_answer(sock))
        finally:
            server.shutdown()
            server.server_close()
    for (operation, body, _), mine, theirs in zip(REQUESTS, got, want, strict=True):
        assert mine == theirs, (operation, body)
    through_app = [body.get("TableName") for operation, body, by_handler in REQUESTS if by_handler]
    assert reached_app == through_app  # the plain GetItems were answered before the app


def _http_answer(sock: Any) -> tuple[str, dict[str, str], bytes]:
    """One answer off a kept-alive connection, as ``answers`` gives them."""
    answer = read_http_answer(sock)
    assert answer.header("Content-Length") is not None  # framed as moto's app frames it, not by a close
    request_id = answer.header("X-Amzn-RequestId")
    assert request_id is not None and re.fullmatch("[A-Za-z0-9]{52}", request_id)
    headers = {k.lower(): v for k, v in answer.headers if k.lower() not in ("x-amzn-requestid", "date")}
    return f"{answer.status} {answer.reason}", headers, answer.body


@pytest.mark.parametrize("padding", [95, 96])  # with Host, X-Amz-Target, Authorization, Content-Length: 99, 100
def test_the_local_aws_counts_header_lines_as_the_standard_parser(padding):
    """A plain GetItem's head is read by the local AWS's own loop; how many lines it takes is the standard
    library's rule (http.client counts the blank line that ends the head: 99 header lines, not 100), the
    oracle here being http.client.parse_headers on the same head. Too many is a 431 (it was a dropped
    connection: the error answer failed in werkzeug's access log)."""
    import http.client
    import socket
    import threading

    from local import aws_server

    data = json.dumps({"TableName": "records", "Key": {"instance_id": {"S": "nobody"}}}).encode()  # its handler's
    head = (
        "Host: 127.0.0.1\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n"
        f"Authorization: {AUTH.format(service='dynamodb')}\r\nContent-Length: {len(data)}\r\n"
        + "".join(f"X-Pad-{n}: p\r\n" for n in range(padding))  # each its own name: a repeated one goes the app's way
        + "\r\n"
    ).encode()
    try:
        http.client.parse_headers(io.BytesIO(head))
        refused = False
    except http.client.HTTPException:
        refused = True
    with mock_aws():
        from moto.dynamodb.models import dynamodb_backends

        create_table(dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"], INSTANCES, "records")
        server = aws_server.keep_alive_server("127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as sock:
                sock.sendall(b"POST / HTTP/1.1\r\n" + head + data)
                status = read_http_answer(sock).status
        finally:
            server.shutdown()
            server.server_close()
    assert (status == 431) == refused, (padding, status)
