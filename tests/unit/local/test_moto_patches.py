"""moto's DynamoDB conditional writes are atomic once patched, as DynamoDB's are.

Without the patch this test finds double winners in some rounds (moto checks
the condition, then writes, unlocked); with it, every round has one winner.
"""

from __future__ import annotations

import sys
import threading

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.moto_patches import serialise_dynamodb_writes


@pytest.fixture
def fast_switching():
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave threads as often as possible
    yield
    sys.setswitchinterval(previous)


def test_concurrent_conditional_puts_have_exactly_one_winner(fast_switching, monkeypatch):
    serialise_dynamodb_writes()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        dynamodb.create_table(
            TableName="slots",
            KeySchema=[{"AttributeName": "slot", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "slot", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        def take(slot: str, who: int, winners: list[int]) -> None:
            try:
                dynamodb.put_item(
                    TableName="slots",
                    Item={"slot": {"S": slot}, "who": {"N": str(who)}},
                    ConditionExpression="attribute_not_exists(slot)",
                )
                winners.append(who)
            except ClientError:
                pass

        for round_ in range(20):
            winners: list[int] = []
            threads = [threading.Thread(target=take, args=(str(round_), who, winners)) for who in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert len(winners) == 1, f"round {round_}: {len(winners)} winners"


def test_concurrent_puts_of_one_object_all_succeed(fast_switching, monkeypatch):
    from local.moto_patches import serialise_s3_object_requests

    serialise_s3_object_requests()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        s3.create_bucket(Bucket="artifacts")
        # moto imports moto.s3.urls lazily on the first object request; twelve threads importing it at once can
        # see it half-made ("module moto.s3.urls not in sys.modules", seen once in CI): that is an import race in
        # the test's first round, not the concurrent PUTs this test is about (the local AWS runs moto's server,
        # which makes each service's app, importing its urls module, under a lock)
        s3.put_object(Bucket="artifacts", Key="warm", Body=b"")
        failures: list[Exception] = []

        def put() -> None:
            try:
                s3.put_object(Bucket="artifacts", Key="same", Body=b"x" * 100_000)
            except Exception as exc:  # any failure is what this test looks for
                failures.append(exc)

        for _ in range(5):
            threads = [threading.Thread(target=put) for _ in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        assert failures == []
        assert s3.get_object(Bucket="artifacts", Key="same")["Body"].read() == b"x" * 100_000


def _attribute(rng, depth: int = 0) -> dict:
    """A random DynamoDB attribute value of every type (as moto holds it: binary as bytes)."""
    text = lambda: "".join(rng.choice('aZ09 _-"\\/<>\u00fc\u2028\u4e2d\U0001f600') for _ in range(rng.randrange(0, 12)))  # noqa: E731
    blob = lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 9)))  # noqa: E731
    number = lambda: rng.choice(["0", "-1", "1.50", "1e3", str(rng.randrange(10**12))])  # noqa: E731
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (["M", "L"] if depth < 3 else [])
    kind = rng.choice(kinds)
    value = {
        "S": text,
        "N": number,
        "B": blob,
        "BOOL": lambda: rng.random() < 0.5,
        "NULL": lambda: True,
        "SS": lambda: [text() + str(n) for n in range(1, 4)],
        "NS": lambda: [str(n) for n in range(1, 4)],
        "BS": lambda: [blob() + bytes([n]) for n in range(3)],
        "M": lambda: {text() + str(n): _attribute(rng, depth + 1) for n in range(rng.randrange(0, 4))},
        "L": lambda: [_attribute(rng, depth + 1) for _ in range(rng.randrange(0, 4))],
    }[kind]()
    return {kind: value}


def test_fast_dynamodb_reads_answer_the_bytes_moto_serializer_gives():
    """The oracle is moto's own serializer: for random items of every attribute type, the fast path's
    status, headers and body equal what the serializer produces for the same result."""
    import random

    from moto.core.responses import ActionContext
    from moto.core.serialize import get_serializer_class
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    from local.moto_patches import fast_dynamodb_reads

    fast_dynamodb_reads()
    serialiser = DynamoResult.execute_result.__wrapped__
    service = get_service_model("dynamodb")
    rng = random.Random(17)
    checked = 0
    for operation in ("GetItem", "Query", "Scan"):
        context = ActionContext(
            service, service.operation_model(operation), get_serializer_class("dynamodb", "json"), DynamoHandler()
        )
        for _ in range(60):
            items = [{f"a{n}": _attribute(rng) for n in range(rng.randrange(1, 8))} for _ in range(rng.randrange(0, 4))]
            if operation == "GetItem":
                result = {"Item": items[0]} if items else {}
            else:
                result = {"Items": items, "Count": len(items), "ScannedCount": len(items) + 1}
                if rng.random() < 0.5:
                    result["LastEvaluatedKey"] = {"k": {"S": "last"}}
            fast = DynamoResult.__new__(DynamoResult)
            fast._result = result
            assert DynamoResult.execute_result(fast, context) == serialiser(fast, context)
            checked += 1
        # AND a result with more than items (consumed capacity) still goes through the serializer
        fast = DynamoResult.__new__(DynamoResult)
        fast._result = {
            "Items": [],
            "Count": 0,
            "ScannedCount": 0,
            "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1},
        }
        assert DynamoResult.execute_result(fast, context) == serialiser(fast, context)
    assert checked == 180
