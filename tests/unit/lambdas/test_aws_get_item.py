"""``lambdas.shared.aws.get_item``: the lean consistent GetItem answers exactly what boto3's ``Table.get_item`` does.

The oracle is boto3's own call on the same table (moto's in-process mock answers both; it sees the
lean request at botocore's ``before-send`` hook, as botocore's own requests).
"""

from __future__ import annotations

import importlib
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.shared import aws
from lambdas.shared.tables import INSTANCES

REGION = "us-east-1"


@pytest.fixture
def table(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset()
        boto3.client("dynamodb", region_name=REGION).create_table(**INSTANCES.create_table_kwargs("records"))
        yield aws.table("records")
        aws.reset()


def full_pipeline_calls(table) -> list[str]:
    """GetItem calls that went through botocore's whole pipeline (its before-call hook fires only there)."""
    calls: list[str] = []
    table.meta.client.meta.events.register("before-call.dynamodb.GetItem", lambda **_: calls.append("GetItem"))
    return calls


ITEM = {
    "instance_id": "every-type",
    "text": "naïve ✓",
    "empty": "",
    "count": 42,
    "fraction": Decimal("3.25"),
    "big": 10**30,
    "negative": -7,
    "flag": True,
    "off": False,
    "nothing": None,
    "blob": b"\x00\xffbytes",
    "nested": {"list": [1, "two", {"three": [True, None]}], "map": {"a": Decimal("0.5")}},
    "strings": {"a", "b"},
    "numbers": {1, 2, 3},
    "blobs": {b"x", b"y"},
}


def test_every_attribute_type_reads_as_boto3_reads_it(table):
    table.put_item(Item=ITEM)
    calls = full_pipeline_calls(table)
    lean = aws.get_item(table, {"instance_id": "every-type"})
    assert calls == []  # answered by the lean request, not by boto3 asking again
    assert lean == table.get_item(Key={"instance_id": "every-type"}, ConsistentRead=True)["Item"]
    assert isinstance(lean["blob"], Binary) and isinstance(lean["count"], Decimal)


def test_a_missing_item_is_none(table):
    calls = full_pipeline_calls(table)
    assert aws.get_item(table, {"instance_id": "nobody"}) is None
    assert calls == []


def test_each_read_sees_the_write_before_it(table):
    """Nothing is cached: a read after each acknowledged write returns that write."""
    for version in range(20):
        table.put_item(Item={"instance_id": "changing", "version": version, "status": f"S{version}"})
        assert aws.get_item(table, {"instance_id": "changing"}) == {
            "instance_id": "changing",
            "version": version,
            "status": f"S{version}",
        }
    table.delete_item(Key={"instance_id": "changing"})
    assert aws.get_item(table, {"instance_id": "changing"}) is None


def test_errors_are_boto3s_own(table):
    """A refused request is asked again through boto3, which raises its usual ClientError."""
    with pytest.raises(ClientError) as missing_table:
        aws.get_item(aws.table("no-such-table"), {"instance_id": "x"})
    assert missing_table.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as wrong_key:
        aws.get_item(table, {"not_the_key": "x"})
    assert wrong_key.value.response["Error"]["Code"] == "ValidationException"


def test_where_x_ray_traces_botocore_boto3_makes_the_call(table, monkeypatch):
    """Powertools' Tracer patches botocore in AWS: each call is then an X-Ray subsegment, which the lean
    request would not be, so boto3 makes it."""
    patcher = importlib.import_module("aws_xray_sdk.core.patcher")  # untyped: no stubs
    table.put_item(Item={"instance_id": "traced", "status": "READY"})
    monkeypatch.setattr(patcher, "_PATCHED_MODULES", {"botocore"})
    calls = full_pipeline_calls(table)
    assert aws.get_item(table, {"instance_id": "traced"}) == {"instance_id": "traced", "status": "READY"}
    assert calls == ["GetItem"]


def test_the_lean_request_goes_where_boto3s_goes(table, monkeypatch):
    """The endpoint is the client's endpoint rules' answer for the call, not the client's base URL: with an
    account id in the credentials (botocore's account-based endpoints, ``<account>.ddb.<region>...``, which
    ``account_id_endpoint_mode`` may require) boto3 sends GetItem elsewhere than ``meta.endpoint_url``."""
    monkeypatch.setenv("AWS_ACCOUNT_ID", "123456789012")
    aws.reset()
    accounted = aws.table("records")
    accounted.put_item(Item={"instance_id": "where", "status": "READY"})
    urls: list[str] = []
    accounted.meta.client.meta.events.register(
        "before-send.dynamodb.GetItem", lambda request, **_: urls.append(request.url)
    )
    assert aws.get_item(accounted, {"instance_id": "where"}) == {"instance_id": "where", "status": "READY"}
    accounted.get_item(Key={"instance_id": "where"}, ConsistentRead=True)
    assert len(urls) == 2 and urls[0] == urls[1], urls
    assert urls[1].startswith("https://123456789012.ddb.")  # the oracle: where boto3 went


@pytest.mark.parametrize("token", [None, "session token/with+odd=chars"])
@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.us-east-1.amazonaws.com/",
        "https://123456789012.ddb.us-east-1.amazonaws.com/",
        "http://127.0.0.1:5055/",
        "http://LocalHost:80/",
        "https://[::1]:8443/",
    ],
)
def test_the_lean_signature_is_botocores_own(table, monkeypatch, url, token):
    """The oracle is botocore's SigV4Auth and AWSRequest.prepare on the same request at the same instant:
    the prepared request must be the same, header for header, byte for byte (two days apart, so a signing
    key kept from one day is not used on the next)."""
    import datetime

    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lean = aws._GetItem.of(table.meta.client)
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    monkeypatch.setattr(lean, "credentials", credentials)
    body = b'{"TableName": "records", "Key": {"instance_id": {"S": "x"}}, "ConsistentRead": true}'
    for now in (datetime.datetime(2026, 11, 29, 23, 59, 58), datetime.datetime(2026, 11, 30, 0, 0, 1)):
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda now=now: now)
        request = AWSRequest("POST", url, data=body, headers=dict(lean._HEADERS))
        botocore.auth.SigV4Auth(credentials, "dynamodb", REGION).add_auth(request)
        want = request.prepare()
        got = lean.signed(url, body)
        assert (got.method, got.url, got.body, got.stream_output) == (want.method, want.url, want.body, False)
        assert list(got.headers.items()) == list(want.headers.items())
