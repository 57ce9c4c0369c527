"""Reads by key with an empty key part answer "not found" (one guard, lambdas.shared.stores._get_item).

DynamoDB refuses an empty key attribute with a ValidationException (moto does too: the oracle below), so
without the guard a caller's empty id would surface as a 500 instead of a 404.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas.shared.stores import FunctionStore, InstanceStore, SlotStore
from tests.support.aws import configure


@pytest.fixture
def names(monkeypatch):
    with mock_aws():
        yield configure(monkeypatch)


def test_dynamodb_itself_refuses_an_empty_key(names):
    with pytest.raises(ClientError) as refused:
        boto3.resource("dynamodb").Table(names.instances).get_item(Key={"instance_id": ""})
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_every_store_reads_an_empty_key_as_not_found(names):
    assert InstanceStore().get("") is None
    assert SlotStore().get("") is None
    assert FunctionStore().get_version("", 1) is None


def test_a_stored_item_is_still_found(names):
    boto3.resource("dynamodb").Table(names.instances).put_item(Item={"instance_id": "i-1", "status": "READY"})
    boto3.resource("dynamodb").Table(names.slots).put_item(Item={"slot": "3014", "state": "RUNNING"})
    assert InstanceStore().get("i-1") == {"instance_id": "i-1", "status": "READY"}
    assert SlotStore().get("3014") == {"slot": "3014", "state": "RUNNING"}
    assert InstanceStore().get("i-2") is None
