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
            TableName="slots", KeySchema=[{"AttributeName": "slot", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "slot", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )
        for round_ in range(20):
            winners: list[int] = []

            def take(who: int) -> None:
                try:
                    dynamodb.put_item(
                        TableName="slots", Item={"slot": {"S": str(round_)}, "who": {"N": str(who)}},
                        ConditionExpression="attribute_not_exists(slot)",
                    )
                    winners.append(who)
                except ClientError:
                    pass

            threads = [threading.Thread(target=take, args=(who,)) for who in range(16)]
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
