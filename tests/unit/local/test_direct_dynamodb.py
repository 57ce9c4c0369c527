"""``local.moto_patches.direct_dynamodb``: DynamoDB requests handed straight to moto's handler get the answers
moto's own server app (its domain dispatcher and Flask app) gives, byte for byte; other requests reach that app.

The oracle is moto's server app itself, fed the same requests from the same starting state.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import EnvironBuilder

from lambdas.shared.tables import INSTANCES
from local import moto_patches

AUTH = "AWS4-HMAC-SHA256 Credential=local/20261129/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
KEY = {"instance_id": {"S": "i-1"}}
ITEM = {**KEY, "status": {"S": "READY"}, "n": {"N": "3"}, "blob": {"B": "AAEC"}, "tags": {"SS": ["a", "b"]}}


def dynamodb(operation: str, body: Any) -> dict[str, Any]:
    return EnvironBuilder(
        path="/",
        method="POST",
        data=json.dumps(body).encode(),
        headers={
            "X-Amz-Target": f"DynamoDB_20120810.{operation}",
            "Content-Type": "application/x-amz-json-1.0",
            "Authorization": AUTH.format(service="dynamodb"),
            "Host": "127.0.0.1:5055",
        },
    ).get_environ()


REQUESTS = [
    ("PutItem", {"TableName": "records", "Item": ITEM}),
    ("PutItem", {"TableName": "records", "Item": ITEM, "ConditionExpression": "attribute_not_exists(instance_id)"}),
    ("GetItem", {"TableName": "records", "Key": KEY, "ConsistentRead": True}),
    ("GetItem", {"TableName": "records", "Key": {"instance_id": {"S": "nobody"}}, "ConsistentRead": True}),
    ("GetItem", {"TableName": "no-such-table", "Key": KEY}),
    ("GetItem", {"TableName": "records", "Key": {"wrong": {"S": "x"}}}),
    (
        "UpdateItem",
        {
            "TableName": "records",
            "Key": KEY,
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "UPDATED_NEW",
        },
    ),
    (
        "Query",
        {
            "TableName": "records",
            "KeyConditionExpression": "instance_id = :k",
            "ExpressionAttributeValues": {":k": {"S": "i-1"}},
        },
    ),
    ("Scan", {"TableName": "records"}),
    ("DeleteItem", {"TableName": "records", "Key": KEY, "ReturnValues": "ALL_OLD"}),
    ("GetItem", {"TableName": "records", "Key": KEY, "ConsistentRead": True}),
]


def answers(app: Any) -> list[tuple[str, dict[str, str], bytes]]:
    """Each request's status, headers (but its request id and date) and body, from a fresh moto."""
    with mock_aws():
        from moto.dynamodb.models import dynamodb_backends

        spec = INSTANCES.create_table_kwargs("records")
        dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].create_table(
            "records",
            schema=spec["KeySchema"],
            throughput=None,
            attr=spec["AttributeDefinitions"],
            global_indexes=spec.get("GlobalSecondaryIndexes"),
            indexes=None,
            streams=None,
            billing_mode=spec["BillingMode"],
            sse_specification=None,
            tags=[],
            deletion_protection_enabled=False,
            warm_throughput=None,
        )
        got = []
        for operation, body in REQUESTS:
            reply: dict[str, Any] = {}
            chunks = app(dynamodb(operation, body), lambda status, headers, *_: reply.update(s=status, h=headers))
            headers = {k.lower(): v for k, v in reply["h"] if k.lower() not in ("x-amzn-requestid", "date")}
            got.append((reply["s"], headers, b"".join(chunks)))
        return got


@pytest.fixture
def moto_app(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_patches.fast_dynamodb_reads()  # as the local AWS runs: both sides the same
    return DomainDispatcherApplication(create_backend_app)


def test_dynamodb_answers_are_moto_servers_own(moto_app):
    through_moto = answers(moto_app)
    reached: list[str] = []

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(environ["PATH_INFO"])
        return moto_app(environ, start_response)

    direct = answers(moto_patches.direct_dynamodb(spy))
    assert reached == []  # every one went straight to the DynamoDB handler
    for request, ours, theirs in zip(REQUESTS, direct, through_moto, strict=True):
        assert ours == theirs, request[0]
    statuses = [status.split()[0] for status, _, _ in direct]
    assert statuses == ["200", "400", "200", "200", "400", "400", "200", "200", "200", "200", "200"]


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
