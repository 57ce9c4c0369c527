"""moto-backed AWS for handler tests, with tables built from the same specs the stacks use."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3

from lambdas.shared import aws
from lambdas.shared.config import Settings
from lambdas.shared.tables import FUNCTIONS, INSTANCES, SLOTS
from local.apigw import LOCAL_ADMIN, build_event, principal_arn, response_parts
from local.context import LocalLambdaContext
from tests.support.settings import use_settings

REGION = "us-east-1"


@dataclass
class Names:
    functions: str
    instances: str
    slots: str
    bucket: str
    inputs: str


def configure(monkeypatch, **extra: str) -> Names:
    """Point this process's settings at fresh, uniquely named tables and buckets (call inside mock_aws).

    ``extra`` sets further settings by their environment variable (``IPOC_VAAS_BACKEND="local"``).
    """
    suffix = uuid.uuid4().hex[:8]
    names = Names(
        f"functions-{suffix}", f"instances-{suffix}", f"slots-{suffix}", f"artifacts-{suffix}", f"inputs-{suffix}"
    )
    sdk = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for key, value in sdk.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    use_settings(
        monkeypatch,
        Settings.from_environment(),
        **{
            "IPOC_FUNCTIONS_TABLE": names.functions,
            "IPOC_INSTANCES_TABLE": names.instances,
            "IPOC_SLOTS_TABLE": names.slots,
            "IPOC_ARTIFACTS_BUCKET": names.bucket,
            "IPOC_INPUTS_BUCKET": names.inputs,
            "IPOC_ADMIN_PRINCIPALS": principal_arn(LOCAL_ADMIN),
            **extra,
        },
    )
    aws.reset()
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for spec, name in ((FUNCTIONS, names.functions), (INSTANCES, names.instances), (SLOTS, names.slots)):
        dynamodb.create_table(**spec.create_table_kwargs(name))
    for bucket in (names.bucket, names.inputs):
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    return names


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(
    handler: Any, method: str, path: str, body: Any = None, *, user: str = LOCAL_ADMIN, raw: bytes | None = None
) -> Reply:
    """Invoke a Lambda handler with the event API Gateway would send for this request."""
    headers = {"Content-Type": "application/json"}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    if raw is not None:
        headers["Content-Type"] = "application/octet-stream"
    event = build_event(method, path, headers=headers, body=data, user=user)
    status, reply_headers, reply_body = response_parts(handler(event, LocalLambdaContext()))
    return Reply(status, reply_headers, reply_body)


def input_key(name: str, user: str = LOCAL_ADMIN) -> str:
    """Where ``user`` keeps an input the S3 streamer may read with its own role (lambdas.shared.stream_access)."""
    from lambdas.shared.stream_access import input_prefix

    return input_prefix(user) + name


def record_ready_instance(policy_text: str, owner: str = LOCAL_ADMIN, instance_id: str | None = None) -> str:
    """Record a READY instance with this exact policy, as CCFaaS's workflow does once a runtime is provisioned,
    for tests that start a runtime directly; returns the instance id."""
    from ipoc.policy import instance_hash
    from lambdas.shared.stores import InstanceStore

    instance_id = instance_id or f"direct-{uuid.uuid4().hex[:8]}"
    InstanceStore().create(
        {
            "instance_id": instance_id,
            "function": "direct",
            "owner": principal_arn(owner),
            "status": "READY",
            "policy": policy_text,
            "instance_hash": instance_hash(policy_text),
        }
    )
    return instance_id


def b64(path: str) -> str:
    return base64.b64encode(path.encode()).decode()


def instance_table_key(name: str, user: str = "alice") -> str:
    """The instances table's key for ``user``'s instance ``name`` (ids are scoped per owner:
    lambdas.ccfaas.instances)."""
    from lambdas.ccfaas.instances import instance_key

    return instance_key(principal_arn(user), name)
