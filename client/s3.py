"""The client's own look at S3 objects, through the chosen profile's endpoint and credentials."""

from __future__ import annotations

from typing import Any

from client.profiles import Profile


def object_size(profile: Profile, bucket: str, key: str) -> int | None:
    """The object's size in bytes, to show beside a progress spinner.

    Best effort by design: None when the profile has no S3 endpoint to ask, the
    caller may not read the object, or S3 does not answer within a few seconds
    (the S3 streamer, not this look-up, decides whether the object can be copied).
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    where: dict[str, Any] = {"region_name": profile.region}
    if profile.kind == "local":  # the local stack's S3 takes any credentials
        if not profile.s3_endpoint:
            return None
        where |= {"endpoint_url": profile.s3_endpoint, "aws_access_key_id": "local", "aws_secret_access_key": "local"}
    config = Config(connect_timeout=3, read_timeout=3, retries={"max_attempts": 1})
    try:
        return int(boto3.client("s3", config=config, **where).head_object(Bucket=bucket, Key=key)["ContentLength"])
    except (BotoCoreError, ClientError):
        return None
