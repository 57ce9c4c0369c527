"""The S3 streamer's test bed: a real runtime that takes a streamer identity, over moto S3 (in process).

Used by tests/functional/lambdas/test_s3stream.py and tests/reliability/test_stream_faults.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.support import policies
from tests.support.aws import configure, input_key, record_ready_instance


@dataclass(frozen=True)
class Target:
    policy: str
    scratch: Path
    inputs: str  # the inputs bucket


@pytest.fixture
def setup(monkeypatch, start_runtime, ids):
    runtime = start_runtime(
        policies.vaas_policy(
            [
                (ids.user, policies.USER_RIGHTS),
                (ids.streamer, [{"file_name": "/s3_app_input/", "rights": 534084}]),
            ]
        )
    )
    with mock_aws():
        names = configure(monkeypatch, IPOC_STREAM_CHUNK=str(256 * 1024))
        record_ready_instance(runtime.policy)  # the streamer delivers only into the caller's own instances
        yield Target(runtime.policy, runtime.scratch, names.inputs)


def put(runtime, name: str, payload: bytes) -> None:
    boto3.client("s3").put_object(Bucket=runtime.inputs, Key=input_key(name), Body=payload)


def body(runtime, ids, name: str, **s3_extra) -> dict:
    return {
        "s3": {"bucket": runtime.inputs, "filename": input_key(name), **s3_extra},
        "veracruz": {
            "filename": "/s3_app_input/in_enc.y4m",
            "policy": runtime.policy,
            "certificate": ids.streamer.certificate,
            "key": ids.streamer.private_key,
        },
    }


def read_back(runtime) -> bytes:
    """What the instance holds (the streamer may only write, so read the runtime's file system)."""
    return (runtime.scratch / "fs" / "s3_app_input" / "in_enc.y4m").read_bytes()
