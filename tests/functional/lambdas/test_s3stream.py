"""The S3 streamer through the real handler: moto S3 in process, a real runtime on loopback."""

from __future__ import annotations

import os
import threading

import boto3
from botocore.client import BaseClient

from ipoc.client import VeracruzClient
from lambdas.s3stream.handler import lambda_handler as s3stream
from tests.support.aws import call, input_key, record_ready_instance
from tests.support.s3stream import body, put, read_back


def test_streams_an_object_into_the_instance(setup, ids):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    put(setup, "video.enc", payload)
    reply = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "video.enc"))
    assert reply.status == 200, reply.body
    assert reply.json["bytes"] == len(payload) and reply.json["status"] == "copied"
    assert read_back(setup) == payload


def test_missing_object_is_502_with_the_original_wording_and_writes_nothing(setup, ids):
    reply = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "nope.enc"))
    assert reply.status == 502
    assert reply.json["message"] == f"Not able to read bucket {setup.inputs} file {input_key('nope.enc')} from S3: 404"
    assert not (setup.scratch / "fs" / "s3_app_input" / "in_enc.y4m").exists()


def test_credentials_all_or_none(setup, ids):
    reply = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "v", aws_access_key_id="AKIA"))
    assert reply.status == 400 and "all provided or none" in reply.json["message"]
    reply = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "v", aws_session_token="t"))
    assert reply.status == 400
    ok = body(setup, ids, "v", aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="t")
    put(setup, "v", b"x")
    assert call(s3stream, "POST", "/s3_stream_veracruz", ok).status == 200


def test_bad_input_is_400(setup, ids):
    assert call(s3stream, "POST", "/s3_stream_veracruz", {"s3": {"bucket": "b"}}).status == 400
    document = body(setup, ids, "v")
    document["veracruz"]["extra"] = 1
    assert call(s3stream, "POST", "/s3_stream_veracruz", document).status == 400
    assert call(s3stream, "POST", "/s3_stream_veracruz", raw=b"\xff").status == 400
    # found by the fuzzer (make reliability): botocore refused the region before any request, and that was a 500
    for region in ("admin_only", "9" * 30):
        reply = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "v", region_name=region))
        assert reply.status == 400 and "region_name must be an AWS region" in reply.json["message"]


def test_a_veracruz_failure_is_502_naming_the_step(setup, ids):
    put(setup, "v", b"x")
    document = body(setup, ids, "v")
    document["veracruz"]["filename"] = "/elsewhere/x"  # the streamer holds no rights there
    reply = call(s3stream, "POST", "/s3_stream_veracruz", document)
    assert reply.status == 502
    assert reply.json["message"].startswith("writing /elsewhere/x into the Veracruz instance failed")
    tampered = body(setup, ids, "v")
    tampered["veracruz"]["policy"] = setup.policy.replace('"debug": true', '"debug": false')
    reply = call(s3stream, "POST", "/s3_stream_veracruz", tampered)
    assert reply.status == 403  # no instance has that policy
    record_ready_instance(tampered["veracruz"]["policy"])  # as if the runtime at that address were not the instance's
    reply = call(s3stream, "POST", "/s3_stream_veracruz", tampered)
    assert reply.status == 502 and "policy hash mismatch" in reply.json["message"]


def test_one_boto3_session_serves_every_request(setup, ids, monkeypatch):
    """Making a Session loads botocore's models (~100 ms here): a warm Lambda makes one, not one per request."""
    made: list[int] = []
    original = boto3.session.Session.__init__

    def counting(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(boto3.session.Session, "__init__", counting)
    put(setup, "a", b"first")
    for _ in range(3):
        assert call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "a")).status == 200
    # with the caller's own credentials too: a client of the same Session
    credentials = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "secret"}
    assert call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "a", **credentials)).status == 200
    assert len(made) <= 1


def test_the_s3_get_overlaps_the_attestation(setup, ids, monkeypatch):
    """The GET is on its way while the client verifies the instance (both wait on the network)."""
    asked = threading.Event()
    original_call = BaseClient._make_api_call

    def recording(self, operation, params):
        if operation == "GetObject":
            asked.set()
        return original_call(self, operation, params)

    original_connect = VeracruzClient.connect
    overlapped: list[bool] = []

    def connect(self) -> None:
        overlapped.append(asked.wait(timeout=5))  # bounded: before the change the GET came after connect
        original_connect(self)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    monkeypatch.setattr(VeracruzClient, "connect", connect)
    payload = os.urandom(1 << 20)
    put(setup, "b", payload)
    reply = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "b"))
    assert reply.status == 200, reply.body
    assert overlapped == [True]
    assert read_back(setup) == payload
