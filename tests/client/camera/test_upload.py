"""`ipoc camera upload` to S3 (moto, in process): a bar with bytes, rate and time left only on a terminal."""

from __future__ import annotations

import os
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.client.conftest import plain

SIZE = 3 * 1024 * 1024  # one PUT (below boto3's multipart threshold), big enough to be counted in chunks


@pytest.fixture
def bucket(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="inputs")
        yield s3


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "in_enc.y4m"
    path.write_bytes(os.urandom(SIZE))
    return path


def test_on_a_pipe_one_line_and_no_progress_noise(ipoc_cli, bucket, video: Path):
    # GIVEN stderr is a pipe WHEN uploading THEN only the outcome line is written, and the object arrives whole
    result = ipoc_cli("camera", "upload", str(video), "s3://inputs/cam/in_enc.y4m")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == f"Uploaded {video} ({SIZE} bytes) to s3://inputs/cam/in_enc.y4m\n"
    assert bucket.get_object(Bucket="inputs", Key="cam/in_enc.y4m")["Body"].read() == video.read_bytes()


def test_on_a_terminal_a_bar_with_bytes_rate_and_time_left(ipoc_cli, bucket, video: Path):
    result = ipoc_cli("camera", "upload", str(video), "s3://inputs/cam/in_enc.y4m", terminal=True)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    lines = plain(result.stderr).splitlines()
    bars = [line for line in lines if line.startswith("upload in_enc.y4m ")]
    assert bars, result.stderr
    # the last drawing counts every byte (3,145,728 B = 3.1 MB), with a rate and a time left
    assert re.search(r" 3\.1/3\.1 MB [\d.]+ [kMG]?B/s \d+:\d\d:\d\d$", bars[-1]), bars[-1]
    assert lines[-1] == f"Uploaded {video} ({SIZE} bytes) to s3://inputs/cam/in_enc.y4m"


def test_quiet_draws_nothing_even_on_a_terminal(ipoc_cli, bucket, video: Path):
    result = ipoc_cli("-q", "camera", "upload", str(video), "s3://inputs/cam/in_enc.y4m", terminal=True)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""


def test_color_on_a_pipe_colors_lines_but_draws_no_bar(ipoc_cli, bucket, video: Path):
    # --color forces colors; a log it is redirected to must still get no animation
    result = ipoc_cli("--color", "camera", "upload", str(video), "s3://inputs/cam/in_enc.y4m")
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.stderr
    assert plain(result.stderr) == f"Uploaded {video} ({SIZE} bytes) to s3://inputs/cam/in_enc.y4m\n"


def test_a_bucket_that_does_not_exist_is_one_clear_line(ipoc_cli, bucket, video: Path):
    """boto3's transfer manager raises its own S3UploadFailedError (not a botocore error): it used to reach the
    user as "unexpected S3UploadFailedError"."""
    result = ipoc_cli("camera", "upload", str(video), "s3://no-such-bucket/in_enc.y4m")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: upload to s3://no-such-bucket/in_enc.y4m failed: ")
    assert "NoSuchBucket" in result.stderr and "unexpected" not in result.stderr
