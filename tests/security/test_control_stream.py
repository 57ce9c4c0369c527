"""Item 11: the S3 streamer is not a confused deputy, seen from a second user's side.

The real control plane in process (moto with Step Functions executing, the real
task Lambda, runtimes as real processes): alice owns an instance and an input;
bob, with an instance of his own, asks the streamer (and the workflow's stream
step) to read alice's object and the artifacts bucket's program, and to deliver
into alice's instance or into a policy he edited to point elsewhere. Each is a
403 with a clear message; alice's own streams still work.
"""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest

from ipoc.client import VeracruzClient
from lambdas.ccfaas.handler import lambda_handler as ccfaas
from lambdas.s3stream.handler import lambda_handler as s3stream
from lambdas.shared.config import settings
from lambdas.shared.stores import ArtifactStore
from tests.support import policies
from tests.support.aws import call, input_key
from tests.support.lifecycle import running_plane
from tests.support.waiting import wait_until

STREAMER_RIGHTS = [{"file_name": "/input/", "rights": 534084}]


@pytest.fixture
def plane(monkeypatch, proxy, tmp_path):
    with running_plane(monkeypatch, proxy, tmp_path, slots=2) as plane:
        yield plane


def _ready(plane, instance_id: str, user: str, ids) -> str:
    assert (
        plane.create(instance_id, [(ids.streamer, STREAMER_RIGHTS), (ids.user, policies.USER_RIGHTS)], user=user).status
        == 202
    )
    record = plane.wait_status(instance_id, ("READY", "FAILED"), user=user)
    assert record["status"] == "READY", record.get("reason")
    return record["policy"]


def _request(bucket: str, key: str, policy: str, ids, **s3_extra: str) -> dict:
    return {
        "s3": {"bucket": bucket, "filename": key, **s3_extra},
        "veracruz": {
            "filename": "/input/data.txt",
            "policy": policy,
            "certificate": ids.streamer.certificate,
            "key": ids.streamer.private_key,
        },
    }


def _stream(request: dict, user: str):
    """``user`` asks the streamer's API for ``request``."""
    return call(s3stream, "POST", "/s3_stream_veracruz", request, user=user)


def _refused(reply) -> str:
    assert reply.status == 403, reply.body
    assert reply.json["error"] == "Forbidden"
    return reply.json["message"]


def test_a_second_user_cannot_read_or_deliver_through_the_streamer(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    inputs = settings().inputs_bucket
    secret = b"alice's camera frames"
    boto3.client("s3").put_object(Bucket=inputs, Key=input_key("camera.enc", "alice"), Body=secret)
    boto3.client("s3").put_object(Bucket=inputs, Key=input_key("mine.enc", "bob"), Body=b"bob's own")
    alice_policy = _ready(plane, "alice-1", "alice", ids)
    bob_policy = _ready(plane, "bob-1", "bob", ids)

    # bob names alice's object, with the service's own role, into his own instance
    message = _refused(_stream(_request(inputs, input_key("camera.enc", "alice"), bob_policy, ids), "bob"))
    assert f"s3://{inputs}/users/bob/" in message
    # ... a key that only looks like his prefix
    _refused(_stream(_request(inputs, "users/bob/../alice/camera.enc", bob_policy, ids), "bob"))
    # ... the artifacts bucket's program
    program = ArtifactStore.artifact_key("echo", hashlib.sha256(echo_wasm).hexdigest())
    _refused(_stream(_request(settings().artifacts_bucket, program, bob_policy, ids), "bob"))
    # bob delivers his own object into alice's instance, even reading with credentials of his own
    _refused(_stream(_request(inputs, input_key("mine.enc", "bob"), alice_policy, ids), "bob"))
    _refused(
        _stream(
            _request(
                inputs,
                input_key("mine.enc", "bob"),
                alice_policy,
                ids,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ),
            "bob",
        )
    )
    # ... or into his own instance's policy edited to point at any host:port
    forged = json.loads(bob_policy)
    forged["veracruz_server_url"] = "127.0.0.1:9"
    message = _refused(
        _stream(_request(inputs, input_key("mine.enc", "bob"), json.dumps(forged, indent=4), ids), "bob")
    )
    assert "exact policy CCFaaS returned" in message

    # alice's own stream still works, and what arrived is hers
    reply = _stream(_request(inputs, input_key("camera.enc", "alice"), alice_policy, ids), "alice")
    assert reply.status == 200, reply.body
    with VeracruzClient(alice_policy, ids.user.certificate, ids.user.private_key) as client:
        assert client.execute(policies.ECHO) == 0
        assert client.read_file("/output/result.txt") == f"ECHO {len(secret)}\n".encode() + secret.upper()
    # and bob's own, into his own instance
    reply = _stream(_request(inputs, input_key("mine.enc", "bob"), bob_policy, ids), "bob")
    assert reply.status == 200, reply.body
    # an instance that ended is no target any more
    assert call(ccfaas, "DELETE", "/instance/bob-1", user="bob").json["status"] == "DELETED"
    _refused(_stream(_request(inputs, input_key("mine.enc", "bob"), bob_policy, ids), "bob"))
    call(ccfaas, "DELETE", "/instance/alice-1", user="alice")


def test_the_workflow_stream_step_applies_the_same_rule(plane, ids, echo_wasm):
    plane.register_echo(echo_wasm)
    inputs = settings().inputs_bucket
    boto3.client("s3").put_object(Bucket=inputs, Key=input_key("camera.enc", "alice"), Body=b"alice's")
    program = ArtifactStore.artifact_key("echo", hashlib.sha256(echo_wasm).hexdigest())
    for bucket, key in ((inputs, input_key("camera.enc", "alice")), (settings().artifacts_bucket, program)):
        query = f"?wait=0&stream_bucket={bucket}&stream_key={key}&stream_to=/input/data.txt"
        reply = plane.create("bob-2", [(ids.user, policies.USER_RIGHTS)], user="bob", query=query)
        _refused(reply)
        assert call(ccfaas, "GET", "/instance/bob-2", user="bob").status == 404  # nothing was created
    # the owner's own workflow stream still delivers
    query = f"?wait=0&stream_bucket={inputs}&stream_key={input_key('camera.enc', 'alice')}&stream_to=/input/data.txt"
    assert plane.create("alice-2", [(ids.user, policies.USER_RIGHTS)], user="alice", query=query).status == 202
    record = plane.wait_status("alice-2", ("READY", "FAILED"), user="alice")
    assert record["status"] == "READY", record.get("reason")
    with VeracruzClient(record["policy"], ids.user.certificate, ids.user.private_key) as client:
        wait_until(
            lambda: client.execute(policies.ECHO) == 0 and client.read_file("/output/result.txt") == b"ECHO 7\nALICE'S",
            timeout=30,
            what="the workflow's stream to land",
        )
    call(ccfaas, "DELETE", "/instance/alice-2", user="alice")
