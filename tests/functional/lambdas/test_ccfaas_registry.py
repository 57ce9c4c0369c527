"""CCFaaS registry routes through the real handler, over moto's DynamoDB and S3 (in process)."""

from __future__ import annotations

import hashlib
import threading

import boto3
import pytest
import requests
from moto import mock_aws

from lambdas.ccfaas.handler import lambda_handler as ccfaas
from tests.support.aws import b64, call, configure
from tests.support.seed import CFG, NAMES, PROGRAM, WEIGHTS, small_function
from tests.support.settings import use_settings


@pytest.fixture
def aws(monkeypatch):
    with mock_aws():
        yield configure(monkeypatch)


def objects(bucket: str) -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_register_small_script_flow(aws):
    # GIVEN nothing registered: delete is a 404 the first time
    missing = call(ccfaas, "DELETE", "/function/vod_small")
    assert missing.status == 404 and missing.json["error"] == "NotFound"
    # WHEN the function policy is registered
    created = call(ccfaas, "POST", "/function", small_function())
    assert created.status == 201 and created.json["function"] == "vod_small"
    assert call(ccfaas, "POST", "/function", small_function()).status == 200  # identical content: no new version
    # AND the program and data files are uploaded
    assert (
        call(ccfaas, "POST", f"/function/vod_small/program/{b64('/program/detector.wasm')}", raw=PROGRAM).status == 201
    )
    wrong = call(
        ccfaas, "POST", f"/function/vod_small/data_file/{b64('/program_data/coco.names')}", raw=b"not the names"
    )
    assert wrong.status == 422 and wrong.json["error"] == "HashMismatch"
    assert hashlib.sha256(b"not the names").hexdigest() in wrong.json["message"]
    assert hashlib.sha256(NAMES).hexdigest() in wrong.json["message"]
    status = call(ccfaas, "GET", f"/function/vod_small/data_file/{b64('/program_data/coco.names')}")
    assert status.json["status"] == "not loaded"
    for path, content in (
        ("/program_data/coco.names", NAMES),
        ("/program_data/yolov3.cfg", CFG),
        ("/program_data/yolov3.weights", WEIGHTS),
    ):
        assert call(ccfaas, "POST", f"/function/vod_small/data_file/{b64(path)}", raw=content).status == 201
    # THEN listing and showing reflect it, and S3 holds one object per file, keyed by sha256
    assert call(ccfaas, "GET", "/function").json == {"functions": ["vod_small"]}
    assert call(ccfaas, "GET", "/function/vod_small").json == small_function()
    assert call(ccfaas, "GET", "/function/vod_small/program").json["programs"] == [b64("/program/detector.wasm")]
    assert len(call(ccfaas, "GET", "/function/vod_small/data_file").json["data_files"]) == 3
    assert call(ccfaas, "GET", "/function/vod_small/status").json["loaded"] is True
    assert sorted(objects(aws.bucket)) == sorted(
        f"functions/vod_small/{hashlib.sha256(c).hexdigest()}" for c in (PROGRAM, NAMES, CFG, WEIGHTS)
    )
    # AND deleting the function removes its binaries
    assert call(ccfaas, "DELETE", "/function/vod_small").status == 200
    assert objects(aws.bucket) == []
    assert call(ccfaas, "GET", "/function").json == {"functions": []}


def test_a_wrong_upload_keeps_nothing(aws):
    call(ccfaas, "POST", "/function", small_function())
    reply = call(ccfaas, "POST", f"/function/vod_small/program/{b64('/program/detector.wasm')}", raw=b"evil")
    assert reply.status == 422
    assert objects(aws.bucket) == []
    # and the right bytes are still accepted afterwards (the original left a file that blocked this)
    assert (
        call(ccfaas, "POST", f"/function/vod_small/program/{b64('/program/detector.wasm')}", raw=PROGRAM).status == 201
    )
    again = call(ccfaas, "POST", f"/function/vod_small/program/{b64('/program/detector.wasm')}", raw=PROGRAM)
    assert again.status == 409 and "already loaded" in again.json["message"]


def test_every_upload_step_refuses_a_loaded_file_alike(aws):
    """Direct upload, presigned start and complete: one rule, one 409 naming the way out."""
    call(ccfaas, "POST", "/function", small_function())
    segment = b64("/program/detector.wasm")
    assert call(ccfaas, "POST", f"/function/vod_small/program/{segment}", raw=PROGRAM).status == 201
    for suffix, raw in (("", PROGRAM), ("/upload", None), ("/upload/complete", None)):
        reply = call(ccfaas, "POST", f"/function/vod_small/program/{segment}{suffix}", raw=raw)
        assert reply.status == 409 and reply.json["error"] == "Conflict", (suffix, reply.json)
        assert (
            reply.json["message"]
            == "/program/detector.wasm of function 'vod_small' is already loaded; DELETE it first to replace it"
        )


def test_file_delete_and_status(aws):
    call(ccfaas, "POST", "/function", small_function())
    segment = b64("/program/detector.wasm")
    assert call(ccfaas, "DELETE", f"/function/vod_small/program/{segment}").status == 404
    call(ccfaas, "POST", f"/function/vod_small/program/{segment}", raw=PROGRAM)
    shown = call(ccfaas, "GET", f"/function/vod_small/program/{segment}").json
    assert (shown["status"], shown["size"], shown["path"]) == ("loaded", len(PROGRAM), "/program/detector.wasm")
    deleted = call(ccfaas, "DELETE", f"/function/vod_small/program/{segment}")
    assert deleted.status == 200 and deleted.json["status"] == "not loaded"
    assert objects(aws.bucket) == []


def test_presigned_upload_is_verified_before_it_counts(aws, monkeypatch):
    call(ccfaas, "POST", "/function", small_function())
    segment = b64("/program_data/yolov3.weights")
    # a wrong upload: PUT the bytes, then complete → 422 and nothing kept
    start = call(ccfaas, "POST", f"/function/vod_small/data_file/{segment}/upload")
    assert start.status == 201 and start.json["method"] == "PUT"
    assert requests.put(start.json["upload_url"], data=b"corrupted weights").status_code == 200
    done = call(ccfaas, "POST", f"/function/vod_small/data_file/{segment}/upload/complete")
    assert done.status == 422 and hashlib.sha256(b"corrupted weights").hexdigest() in done.json["message"]
    assert objects(aws.bucket) == []
    assert call(ccfaas, "GET", f"/function/vod_small/data_file/{segment}").json["status"] == "not loaded"
    # the right upload
    start = call(ccfaas, "POST", f"/function/vod_small/data_file/{segment}/upload")
    assert requests.put(start.json["upload_url"], data=WEIGHTS).status_code == 200
    done = call(ccfaas, "POST", f"/function/vod_small/data_file/{segment}/upload/complete")
    assert done.status == 201 and done.json["status"] == "loaded"
    assert objects(aws.bucket) == [f"functions/vod_small/{hashlib.sha256(WEIGHTS).hexdigest()}"]


def test_complete_without_upload_and_size_limits(aws, monkeypatch):
    call(ccfaas, "POST", "/function", small_function())
    segment = b64("/program_data/yolov3.weights")
    assert call(ccfaas, "POST", f"/function/vod_small/data_file/{segment}/upload/complete").status == 404
    use_settings(monkeypatch, IPOC_DIRECT_UPLOAD_LIMIT="1000")
    too_big = call(ccfaas, "POST", f"/function/vod_small/data_file/{segment}", raw=WEIGHTS)
    assert too_big.status == 413 and "/upload" in too_big.json["message"]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda p: p.update(function="bad name!"), "$.function"),
        (lambda p: p["programs"][0].update(pi_hash="XYZ"), "$.programs[0].pi_hash"),
        (lambda p: p["data_files"][1].update(data_file="/program_data/coco.names"), "$.data_files[1]"),
        (lambda p: p["programs"][0].update(program_file_name="program/x.wasm"), "$.programs[0]"),
        (lambda p: p.pop("debug"), "$"),
    ],
)
def test_invalid_function_policies_are_400_naming_the_path(aws, mutate, where):
    policy = small_function()
    mutate(policy)
    reply = call(ccfaas, "POST", "/function", policy)
    assert reply.status == 400
    assert where in reply.json["message"]


def test_unknown_names_and_bad_segments(aws):
    call(ccfaas, "POST", "/function", small_function())
    assert call(ccfaas, "GET", "/function/nope").status == 404
    assert call(ccfaas, "GET", f"/function/vod_small/program/{b64('/program/other.wasm')}").status == 404
    bad = call(ccfaas, "GET", "/function/vod_small/program/%%%")
    assert bad.status in (400, 404)
    assert call(ccfaas, "POST", "/function", raw=b"not json").status == 400
    assert call(ccfaas, "GET", "/nowhere").json["error"] == "NoSuchRoute"
    # found by the fuzzer (make reliability): an empty function name reached DynamoDB, which refuses empty keys (500)
    empty = call(ccfaas, "POST", "/instance", {"function": "", "instanceid": "i-1", "identities": []}, user="alice")
    assert empty.status in (400, 404) and empty.json["error"] in ("ValidationError", "NotFound")


def test_registry_routes_need_the_admin_role(aws):
    reply = call(ccfaas, "GET", "/function", user="mallory")
    assert reply.status == 403 and reply.json["error"] == "Forbidden"
    assert "mallory" in reply.json["message"]


def test_function_with_live_instances_cannot_be_deleted(aws):
    call(ccfaas, "POST", "/function", small_function())
    boto3.resource("dynamodb").Table(aws.instances).put_item(
        Item={"instance_id": "i-1", "function": "vod_small", "status": "READY"}
    )
    reply = call(ccfaas, "DELETE", "/function/vod_small")
    assert reply.status == 409 and "i-1" in reply.json["message"]


def test_concurrent_uploads_of_the_same_program_lose_nothing(aws):
    call(ccfaas, "POST", "/function", small_function())
    segment = b64("/program/detector.wasm")
    results: list[int] = []

    def upload() -> None:
        results.append(call(ccfaas, "POST", f"/function/vod_small/program/{segment}", raw=PROGRAM).status)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "an upload did not answer within 30 s"
    # Exactly one upload marks the file loaded (a conditional write); every other one is told it lost.
    assert sorted(results) == [201] + [409] * 7, results
    assert call(ccfaas, "GET", f"/function/vod_small/program/{segment}").json["status"] == "loaded"
    assert objects(aws.bucket) == [f"functions/vod_small/{hashlib.sha256(PROGRAM).hexdigest()}"]
