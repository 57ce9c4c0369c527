"""The object size shown beside the streaming spinner: a HEAD through the profile, best effort.

S3 is moto's server on a loopback port (a real HTTP endpoint, as the local stack's).
"""

from __future__ import annotations

import time

import boto3
import pytest
from moto.server import ThreadedMotoServer

from client.profiles import Profile
from client.s3 import object_size
from tests.support.waiting import free_port


def local_profile(s3_endpoint: str | None) -> Profile:
    return Profile(name="local", kind="local", endpoints={}, s3_endpoint=s3_endpoint)


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    url = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    s3.create_bucket(Bucket="inputs")
    s3.put_object(Bucket="inputs", Key="cam/in.y4m", Body=b"\0" * 12345)
    try:
        yield url
    finally:
        server.stop()


def test_the_size_of_an_object_the_profile_can_read(s3_endpoint):
    assert object_size(local_profile(s3_endpoint), "inputs", "cam/in.y4m") == 12345


def test_a_missing_object_or_bucket_is_no_size_not_an_error(s3_endpoint):
    # the streamer, not this look-up, reports a missing input to the user
    assert object_size(local_profile(s3_endpoint), "inputs", "nope") is None
    assert object_size(local_profile(s3_endpoint), "nobucket", "cam/in.y4m") is None


def test_no_endpoint_or_nothing_listening_is_no_size_quickly():
    assert object_size(local_profile(None), "inputs", "cam/in.y4m") is None
    started = time.monotonic()
    assert object_size(local_profile(f"http://127.0.0.1:{free_port()}"), "inputs", "cam/in.y4m") is None
    assert time.monotonic() - started < 10  # one attempt, short timeouts: the spinner is not held up
