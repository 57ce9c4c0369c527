"""Item 13 (uploads): a presigned upload URL stops working once its upload completed, failed or was replaced.

The CCFaaS handler over moto's S3 (in process): the URL the publisher got is
replayed as an attacker holding it (from a log, a shell history) would. A
presigned URL cannot be revoked, so the service hands out the URL of the one
part of a multipart upload and closes that upload when it ends; S3 then
answers NoSuchUpload. Nothing written through a stale URL is kept.
"""

from __future__ import annotations

import hashlib

import boto3
import pytest
import requests
from moto import mock_aws

from lambdas.ccfaas.handler import lambda_handler as ccfaas
from tests.support.aws import b64, call, configure
from tests.support.seed import WEIGHTS, small_function

BASE = f"/function/vod_small/data_file/{b64('/program_data/yolov3.weights')}"


@pytest.fixture
def aws(monkeypatch):
    with mock_aws():
        names = configure(monkeypatch)
        assert call(ccfaas, "POST", "/function", small_function()).status == 201
        yield names


def _staged(bucket: str) -> list[str]:
    s3 = boto3.client("s3")
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="uploads/").get("Contents", [])]
    uploads = [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return objects + uploads


def _start(path: str = "/program_data/yolov3.weights") -> str:
    start = call(ccfaas, "POST", f"/function/vod_small/data_file/{b64(path)}/upload")
    assert start.status == 201, start.body
    return start.json["upload_url"]


def test_the_url_is_dead_after_a_completed_upload(aws):
    url = _start()
    assert requests.put(url, data=WEIGHTS, timeout=30).status_code == 200
    assert call(ccfaas, "POST", f"{BASE}/upload/complete").status == 201
    replay = requests.put(url, data=b"attacker bytes", timeout=30)
    assert replay.status_code == 404 and b"NoSuchUpload" in replay.content  # before the fix: 200, a new object
    assert _staged(aws.bucket) == []
    key = f"functions/vod_small/{hashlib.sha256(WEIGHTS).hexdigest()}"
    assert boto3.client("s3").get_object(Bucket=aws.bucket, Key=key)["Body"].read() == WEIGHTS


def test_the_url_is_dead_after_a_failed_upload(aws):
    url = _start()
    assert requests.put(url, data=b"corrupted weights", timeout=30).status_code == 200
    assert call(ccfaas, "POST", f"{BASE}/upload/complete").status == 422
    assert requests.put(url, data=WEIGHTS, timeout=30).status_code == 404
    assert call(ccfaas, "POST", f"{BASE}/upload/complete").status == 404  # nothing in progress: nothing to complete
    assert _staged(aws.bucket) == []


def test_a_replaced_or_deleted_upload_kills_its_url(aws):
    first = _start()
    second = _start()  # the publisher started over: the first URL must not feed the second upload
    assert requests.put(first, data=b"stale", timeout=30).status_code == 404
    assert requests.put(second, data=WEIGHTS, timeout=30).status_code == 200
    assert call(ccfaas, "POST", f"{BASE}/upload/complete").status == 201
    third = _start("/program_data/coco.names")
    assert call(ccfaas, "DELETE", "/function/vod_small").status == 200
    assert requests.put(third, data=b"late", timeout=30).status_code == 404
    assert _staged(aws.bucket) == []


def test_completing_twice_is_a_clear_answer(aws):
    url = _start()
    assert requests.put(url, data=WEIGHTS, timeout=30).status_code == 200
    assert call(ccfaas, "POST", f"{BASE}/upload/complete").status == 201
    again = call(ccfaas, "POST", f"{BASE}/upload/complete")
    assert again.status == 409 and again.json["error"] == "Conflict"  # already loaded
