"""``local.dynamodb_transport``: the API processes' DynamoDB reads over kept sockets get what botocore gets.

The oracle is botocore's own transport (urllib3) on the same requests to the same real local AWS
(``python -m local.aws_server``): every read, its errors included, parses to the same response, and the
answer's status, headers (but the request id and the date) and body are the same bytes.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.dynamodb_transport import Transport, install
from local.stack import TABLE_NAMES
from tests.functional.local.test_local_state import local_aws

TABLE = TABLE_NAMES["instances"]
ITEM = {
    "instance_id": {"S": "every-type"},
    "text": {"S": 'naïve ✓ "quoted"'},
    "n": {"N": "-12.50"},
    "blob": {"B": b"\x00\xff"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "nested": {"M": {"list": {"L": [{"N": "1"}, {"SS": ["a", "b"]}]}}},
}
KEY = {"instance_id": {"S": "every-type"}}
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_item", {"TableName": TABLE, "Key": KEY, "ConsistentRead": True}),
    ("get_item", {"TableName": TABLE, "Key": {"instance_id": {"S": "nobody"}}}),
    (
        "get_item",
        {"TableName": TABLE, "Key": KEY, "ProjectionExpression": "#t", "ExpressionAttributeNames": {"#t": "text"}},
    ),
    ("get_item", {"TableName": "no-such-table", "Key": KEY}),
    ("get_item", {"TableName": TABLE, "Key": {"wrong": {"S": "x"}}}),
    (
        "query",
        {
            "TableName": TABLE,
            "KeyConditionExpression": "instance_id = :k",
            "ExpressionAttributeValues": {":k": {"S": "every-type"}},
        },
    ),
    ("scan", {"TableName": TABLE}),
    ("batch_get_item", {"RequestItems": {TABLE: {"Keys": [KEY, {"instance_id": {"S": "nobody"}}]}}}),
    ("describe_table", {"TableName": TABLE}),
]


def _client(endpoint: str, transport: bool) -> Any:
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    if transport:
        install(session)
    return session.client("dynamodb", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))


def _outcome(client: Any, method: str, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The parsed answer (or error) and the answer's headers but its request id and date (the CRC32 and
    Content-Length among them: the body's bytes)."""
    try:
        parsed: Any = getattr(client, method)(**kwargs)
    except ClientError as error:
        parsed = error.response
    parsed.get("ResponseMetadata", {}).pop("RequestId", None)
    headers = parsed.get("ResponseMetadata", {}).pop("HTTPHeaders", {})
    return parsed, {k: v for k, v in headers.items() if k not in ("x-amzn-requestid", "date")}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory) -> Iterator[str]:
    with local_aws(tmp_path_factory.mktemp("state")) as local:
        local["dynamodb"].put_item(TableName=TABLE, Item=ITEM)
        yield local["dynamodb"].meta.endpoint_url


def test_reads_over_the_kept_socket_are_botocores_own(endpoint, monkeypatch):
    ours, theirs = _client(endpoint, True), _client(endpoint, False)
    for method, kwargs in CALLS:
        want = _outcome(theirs, method, kwargs)
        sent = _botocore_sends(monkeypatch)
        assert _outcome(ours, method, kwargs) == want, (method, kwargs)
        assert sent == [], (method, kwargs)  # the transport answered: botocore's own sent nothing
    ours.put_item(TableName=TABLE, Item={**ITEM, "instance_id": {"S": "written"}})  # writes stay botocore's
    assert len(sent) == 1
    assert ours.get_item(TableName=TABLE, Key={"instance_id": {"S": "written"}}, ConsistentRead=True)["Item"]
    assert len(sent) == 1


def _botocore_sends(monkeypatch) -> list[str]:
    """The requests botocore's own transport (urllib3) sends from now on."""
    from botocore.httpsession import URLLib3Session

    sent: list[str] = []
    original = URLLib3Session.send

    def send(self: Any, request: Any) -> Any:
        sent.append(request.url)
        return original(self, request)

    monkeypatch.setattr(URLLib3Session, "send", send)
    return sent


def _server(answer: bytes, connections: int) -> tuple[int, list[bytes]]:
    """A server on a free port answering one request per connection with ``answer``, then closing."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        with listener:
            for _ in range(connections):
                connection, _ = listener.accept()
                with connection:
                    requests.append(connection.recv(65536))
                    connection.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], requests


def _request(port: int) -> AWSPreparedRequest:
    return AWSRequest(
        "POST", f"http://127.0.0.1:{port}/", data=b"{}", headers={"X-Amz-Target": b"DynamoDB_20120810.GetItem"}
    ).prepare()


def test_a_kept_connection_the_server_closed_is_replaced():
    """A server may close a kept connection between requests (the local AWS's idle timeout, without saying
    so): the next read goes on a new connection."""
    port, requests = _server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-amz-crc32: 1\r\n\r\n{}", 3)
    transport = Transport()
    for _ in range(3):
        response = transport(_request(port))
        assert response is not None and response.status_code == 200 and response.content == b"{}"
        assert response.headers["X-Amz-Crc32"] == "1"
    assert len(requests) == 3
    assert requests[0].startswith(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port)
    assert b"\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n" in requests[0]  # bytes values as http.client sends them


def test_an_answer_it_cannot_read_goes_to_botocore():
    """No Content-Length (or a chunked one): the transport declines, and botocore sends the request itself."""
    port, _ = _server(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n\r\n{}", 1)
    assert Transport()(_request(port)) is None


def test_the_stack_installs_it_on_the_handlers_session(monkeypatch, tmp_path: Path):
    from lambdas.shared import aws
    from local.dynamodb_transport import install_for_handlers

    original = aws.session
    monkeypatch.setattr(aws, "session", original)
    install_for_handlers()
    install_for_handlers()  # idempotent
    first = aws.session()
    assert getattr(first, "_ipoc_local_transport", False)
    aws.reset()  # a forked API worker's: a new Session, with the transport too
    second = aws.session()
    assert second is not first and getattr(second, "_ipoc_local_transport", False)
    aws.reset()
