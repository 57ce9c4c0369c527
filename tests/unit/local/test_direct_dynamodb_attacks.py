"""Attacks on the local AWS's direct DynamoDB routing: requests shaped to take the plain-GetItem shortcut
that moto's own handler would answer otherwise (refuse, or answer differently). The oracle is moto's server
app fed the same requests, as in test_direct_dynamodb.py (whose comparison this reuses)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.local import test_direct_dynamodb as direct
from tests.unit.local.test_direct_dynamodb import ITEM, KEY, VERSION_KEY, get

ODD_REQUESTS = [
    ("PutItem", {"TableName": "records", "Item": ITEM}, True),
    ("PutItem", {"TableName": "records", "Item": {"instance_id": {"S": "7"}}}, True),
    ("PutItem", {"TableName": "versions", "Item": {**VERSION_KEY, "latest": {"N": "1"}}}, True),
    (*get("records", {"instance_id": {"N": "abc"}}), None),  # not a number
    (*get("records", {"instance_id": {"N": "1e400"}}), None),  # out of DynamoDB's range
    (*get("records", {"instance_id": {"N": "07"}}), None),
    (*get("records", {"instance_id": {"S": "7"}, "extra": {"S": "x"}}), None),
    (*get("versions", {**VERSION_KEY, "extra": {"S": "x"}}), None),
    (*get("versions", {"function": {"S": "vod"}, "item": {"N": "1"}}), None),  # the sort key's type
    (*get("records", KEY, ConsistentRead=None), None),
    (*get("records", KEY, ConsistentRead=0), None),
    (*get("records", {"instance_id": {"S": "i-1", "N": "1"}}), None),
    (*get("records", {"instance_id": {"SS": ["i-1"]}}), None),
    (*get("records", {"instance_id": {"B": "aS0x"}}), None),
    (*get("arn:aws:dynamodb:us-east-1:123456789012:table/records", KEY), None),
    (*get("records", {"instance_id": {"S": "x" * 2049}}), None),  # over DynamoDB's 2048-byte partition key
]


def _raising_is_an_answer(app: Any) -> Any:
    """moto itself raises on some of these (a 500 from its server): compare the exception's type."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return [b"".join(app(environ, start_response))]
        except Exception as exc:  # noqa: BLE001
            start_response(f"500 {type(exc).__name__}", [("x-amzn-RequestId", "A" * 52)])
            return [b""]

    return wrapped


def test_odd_get_items_get_moto_servers_own_answers(moto_app, monkeypatch):
    """Whichever path answers, it is moto's server's answer, byte for byte."""
    monkeypatch.setattr(direct, "REQUESTS", ODD_REQUESTS)
    theirs = direct.answers(_raising_is_an_answer(moto_app))
    ours = direct.answers(_raising_is_an_answer(direct.moto_patches.direct_dynamodb(moto_app)))
    mismatched = [
        (body, mine, moto) for (_, body, _), mine, moto in zip(ODD_REQUESTS, ours, theirs, strict=True) if mine != moto
    ]
    assert mismatched == []


moto_app = direct.moto_app
pytest  # noqa: B018  # fixtures come from the module above
