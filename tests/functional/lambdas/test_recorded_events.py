"""Recorded API Gateway REST proxy events (tests/events/, AWS's documented shape) fed to the real handlers.

Every other handler test builds its events with our own adapter (``local.apigw.build_event``), so a field
the adapter invents or misses would go unnoticed there. Here the events come from AWS's documented input
format with an IAM (SigV4) caller, and the adapter is checked against them key by key.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.ccfaas.instances import instance_key
from lambdas.shared.auth import caller, principal_id
from local.apigw import LOCAL_ADMIN, build_event, principal_arn, response_parts
from local.context import LocalLambdaContext
from tests.support.aws import call, configure
from tests.support.events import event_names, load_event
from tests.support.seed import small_function

ADMIN_ROLE = "arn:aws:iam::123456789012:role/ipoc-admin"  # the role the recorded operator session assumed
ALICE = "arn:aws:iam::123456789012:user/alice"


def invoke(event: dict[str, Any]) -> tuple[int, Any]:
    status, _, body = response_parts(ccfaas(event, LocalLambdaContext()))
    return status, json.loads(body)


def test_the_recorded_callers_are_read_from_the_identity_aws_sends():
    role = load_event("rest_get_function_assumed_role")
    user = load_event("rest_get_instance_iam_user")
    assert caller(role) == "arn:aws:sts::123456789012:assumed-role/ipoc-admin/operator-session"
    assert principal_id(role) == "AROACKCEVSQ6C2EXAMPLE:operator-session"  # ${aws:userid} of a role session
    assert caller(user) == ALICE and principal_id(user) == "AIDACKCEVSQ6C2EXAMPLE"


def test_an_assumed_role_session_is_admin_when_its_role_is(monkeypatch):
    """IPOC_ADMIN_PRINCIPALS names the role (what an operator writes); API Gateway sends the session's sts ARN."""
    with mock_aws():
        configure(monkeypatch, IPOC_ADMIN_PRINCIPALS=f"{ADMIN_ROLE},{principal_arn(LOCAL_ADMIN)}")
        assert call(ccfaas, "POST", "/function", small_function()).status == 201
        status, body = invoke(load_event("rest_get_function_assumed_role"))
        assert status == 200, body
        assert "vod_small" in str(body)


def test_an_assumed_role_session_of_another_role_is_refused(monkeypatch):
    with mock_aws():
        configure(monkeypatch, IPOC_ADMIN_PRINCIPALS="arn:aws:iam::123456789012:role/someone-else")
        status, body = invoke(load_event("rest_get_function_assumed_role"))
        assert status == 403 and body["error"] == "Forbidden"
        assert "assumed-role/ipoc-admin/operator-session" in body["message"]


def test_an_iam_user_lists_only_its_own_instances(monkeypatch):
    with mock_aws():
        names = configure(monkeypatch)
        table = boto3.resource("dynamodb").Table(names.instances)
        for owner, name in ((ALICE, "mine"), ("arn:aws:iam::123456789012:user/bob", "bobs")):
            table.put_item(
                Item={
                    "instance_id": instance_key(owner, name),
                    "name": name,
                    "owner": owner,
                    "function": "vod_small",
                    "status": "READY",
                    "created_at": "2026-03-01T10:00:00Z",
                }
            )
        status, body = invoke(load_event("rest_get_instance_iam_user"))
        assert status == 200 and body["instances"] == ["mine"], body


def test_a_resource_template_with_path_parameters_routes_by_path(monkeypatch):
    """AWS sends ``resource: /instance/{instance_id}`` and ``pathParameters``; our adapter sends the plain path."""
    with mock_aws():
        names = configure(monkeypatch)
        event = load_event("rest_get_instance_by_id_iam_user")
        iid = event["pathParameters"]["instance_id"]
        boto3.resource("dynamodb").Table(names.instances).put_item(
            Item={
                "instance_id": instance_key(ALICE, iid),
                "name": iid,
                "owner": ALICE,
                "function": "vod_small",
                "status": "STARTING",
                "created_at": "2026-03-01T10:00:00Z",
            }
        )
        status, body = invoke(event)
        assert status == 200 and body["instance"] == iid and body["status"] == "STARTING", body
        event["requestContext"]["identity"]["userArn"] = "arn:aws:iam::123456789012:user/mallory"
        status, body = invoke(event)
        assert status == 404 and body["error"] == "NotFound", body


# What AWS sends that the local adapter leaves out. Handlers must not read these (they would see None
# locally and a value in AWS); the list is exact, so a field added to or dropped from the adapter shows here.
ADAPTER_OMITS = {
    "requestContext.domainName",
    "requestContext.domainPrefix",
    "requestContext.extendedRequestId",
    "requestContext.requestTime",
    "requestContext.resourceId",
    "requestContext.identity.accessKey",
    "requestContext.identity.clientCert",
    "requestContext.identity.cognitoAuthenticationProvider",
    "requestContext.identity.cognitoAuthenticationType",
    "requestContext.identity.cognitoIdentityId",
    "requestContext.identity.cognitoIdentityPoolId",
    "requestContext.identity.principalOrgId",
}
ALWAYS_OBJECTS = {"requestContext", "requestContext.identity"}


def shape(value: Any, prefix: str = "") -> dict[str, type]:
    """Every key path of an event with its value's JSON type (objects recurse except header/parameter maps)."""
    found: dict[str, type] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if path in ALWAYS_OBJECTS:
            found |= shape(item, path + ".")
        else:
            found[path] = type(item)
    return found


@pytest.mark.parametrize("name", event_names())
def test_the_local_adapter_builds_events_of_the_recorded_shape(name):
    recorded = load_event(name)
    identity = recorded["requestContext"]["identity"]
    built = build_event(
        recorded["httpMethod"],
        recorded["path"],
        headers=recorded["headers"],
        body=(recorded["body"] or "").encode(),
        user="alice",
        source_ip=identity["sourceIp"],
    )
    want, got = shape(recorded), shape(built)
    assert set(got) <= set(want), f"the adapter invents fields AWS does not send: {sorted(set(got) - set(want))}"
    assert set(want) - set(got) == ADAPTER_OMITS
    mismatched = {
        k: (want[k].__name__, got[k].__name__)
        for k in got
        if type(None) not in (want[k], got[k]) and want[k] is not got[k]
    }
    assert not mismatched, f"(AWS type, adapter type) differ: {mismatched}"
    # The fields our handlers read have values of the same kind on both sides.
    for path in (
        "httpMethod",
        "path",
        "headers",
        "isBase64Encoded",
        "requestContext.identity.userArn",
        "requestContext.identity.user",
        "requestContext.identity.sourceIp",
    ):
        assert got[path] is want[path], path
