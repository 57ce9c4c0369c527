"""Stream an S3 object into a Veracruz instance in bounded chunks, after verifying the instance.

The S3 GET runs while the instance is verified (certificate chain, runtime
hash, policy hash, by the one Veracruz client), and nothing is written before
both succeed: a missing object or a refused read writes nothing. The body then
flows from S3's open response stream straight into ``stream_file``. Clients
come from the process's one boto3 Session, which loads S3's model when this
module is imported (Lambda's init phase), not in the first request: a
request's client, made with the caller's credentials, then costs ~5 ms
instead of ~85 ms of CPU.
Credentials, the identity key and the object's bytes are never logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, InvalidRegionError
from botocore.utils import validate_region_name

from ipoc import errors, schemas
from ipoc.client import VeracruzClient
from lambdas.shared import aws

CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


@dataclass(frozen=True)
class StreamRequest:
    bucket: str
    key: str
    region: str | None
    credentials: dict[str, str]
    filename: str
    policy: str
    certificate: str
    private_key: str

    def __repr__(self) -> str:  # never print the key or credentials
        return f"StreamRequest(s3://{self.bucket}/{self.key} -> {self.filename})"


def parse_request(document: Any) -> StreamRequest:
    """Validate with the seed's schema, plus the optional ``aws_session_token`` the seed's README promises."""
    if not isinstance(document, dict):
        raise errors.ValidationError("the body must be a JSON object with 's3' and 'veracruz'")
    s3: Any = document.get("s3")  # JSON, checked below by the schema
    token = None
    if isinstance(s3, dict) and "aws_session_token" in s3:
        token = s3["aws_session_token"]
        if not isinstance(token, str):
            raise errors.ValidationError("$.s3.aws_session_token must be a string", path="$.s3.aws_session_token")
        document = {**document, "s3": {k: v for k, v in s3.items() if k != "aws_session_token"}}
        s3 = document["s3"]
    schemas.validate("s3_app_input", document)
    if "veracruz" not in document or "s3" not in document:
        raise errors.ValidationError("both 's3' and 'veracruz' are required")
    keys = {k: s3[k] for k in CREDENTIAL_KEYS[:2] if k in s3}
    if len(keys) == 1 or (token is not None and len(keys) != 2):
        raise errors.ValidationError(
            "aws credentials have to be all provided or none: aws_access_key_id and aws_secret_access_key "
            "(and optionally aws_session_token) together"
        )
    if token is not None:
        keys["aws_session_token"] = token
    region = s3.get("region_name")
    try:
        validate_region_name(region)  # botocore's own check, which would otherwise raise before any request
    except InvalidRegionError:
        raise errors.ValidationError(
            f"$.s3.region_name must be an AWS region such as eu-west-1, got {region[:40]!r}", path="$.s3.region_name"
        ) from None
    veracruz = document["veracruz"]
    return StreamRequest(
        bucket=s3["bucket"],
        key=s3["filename"],
        region=region,
        credentials=keys,
        filename=veracruz["filename"],
        policy=veracruz["policy"],
        certificate=veracruz["certificate"],
        private_key=veracruz["key"],
    )


def _s3_client(request: StreamRequest) -> Any:
    # The caller's credentials when given, else the function's own (its role, or the local stack's).
    return aws.new_client(
        "s3",
        region_name=request.region,
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
        aws_access_key_id=request.credentials.get("aws_access_key_id"),
        aws_secret_access_key=request.credentials.get("aws_secret_access_key"),
        aws_session_token=request.credentials.get("aws_session_token"),
    )


def load_s3_model() -> None:
    """Have the shared Session load S3's model and endpoint rules now, so that no request pays for them
    (the first S3 client of a Session costs ~85 ms of CPU, later ones ~5 ms). The client gets placeholder
    keys, so botocore does not run the credential chain at import (off Lambda that would probe instance
    metadata); each request's client has its own. A failure only leaves the cost to the first request."""
    try:
        aws.new_client("s3", region_name="us-east-1", aws_access_key_id="model", aws_secret_access_key="model")
    except BotoCoreError:
        pass


def _s3_failure(request: StreamRequest, exc: Exception) -> errors.DependencyFailed:
    # The HTTP status, as the original's HEAD reported it ("404", "403"), whatever the GET's error code says.
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = str(status) if status else exc.response.get("Error", {}).get("Code", "ClientError")
    else:
        detail = type(exc).__name__
    return errors.DependencyFailed(f"Not able to read bucket {request.bucket} file {request.key} from S3: {detail}")


def _connect(request: StreamRequest) -> VeracruzClient:
    try:
        client = VeracruzClient(request.policy, request.certificate, request.private_key)
        client.connect()
    except errors.VeracruzError as exc:
        raise errors.DependencyFailed(f"connecting to the Veracruz instance failed: {exc.message}") from None
    except errors.IpocError as exc:
        raise errors.ValidationError(f"veracruz: {exc.message}") from None
    return client


def stream(request: StreamRequest, chunk_size: int, log: Callable[..., None]) -> dict[str, Any]:
    s3 = _s3_client(request)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-get") as pool:
        # The GET's first byte and the attestation both wait on the network: overlap them.
        getting: Future[dict[str, Any]] = pool.submit(s3.get_object, Bucket=request.bucket, Key=request.key)
        connecting: errors.IpocError | None = None
        client: VeracruzClient | None = None
        try:
            client = _connect(request)
        except errors.IpocError as exc:
            connecting = exc
        try:
            response = getting.result()
        except (ClientError, BotoCoreError) as exc:
            if client is not None:
                client.close()  # nothing was written: the object is unreadable
            raise _s3_failure(request, exc) from None
    body = response["Body"]
    if client is None:
        body.close()
        assert connecting is not None
        raise connecting
    size = response.get("ContentLength", 0)
    try:
        try:
            sent = client.stream_file(request.filename, body, chunk_size)
        except errors.VeracruzError as exc:
            raise errors.DependencyFailed(
                f"writing {request.filename} into the Veracruz instance failed: {exc.message}"
            ) from None
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _s3_failure(request, exc) from None
        finally:
            body.close()
    finally:
        client.close()
    seconds = time.monotonic() - started
    log("object streamed", extra={"bytes": sent, "seconds": round(seconds, 3), "target": request.filename})
    if sent != size:
        raise errors.DependencyFailed(f"S3 announced {size} bytes for {request.key} but {sent} arrived")
    return {"status": "copied", "bytes": sent, "filename": request.filename, "seconds": round(seconds, 3)}


def stream_object(
    *,
    bucket: str,
    key: str,
    region: str | None,
    filename: str,
    policy: str,
    certificate: str,
    private_key: str,
    chunk_size: int,
) -> dict[str, Any]:
    """:func:`stream` as the instance lifecycle asks for it (``lambdas.shared.ports.Streamer``): with the
    service's own credentials (none passed) and no progress log."""
    request = StreamRequest(
        bucket=bucket,
        key=key,
        region=region,
        credentials={},
        filename=filename,
        policy=policy,
        certificate=certificate,
        private_key=private_key,
    )
    return stream(request, chunk_size, lambda *args, **kwargs: None)


def streamer() -> Callable[..., dict[str, Any]]:
    """This module's answer to the lifecycle's streamer port (named in ``lambdas.shared.ports.DEPLOYED``)."""
    return stream_object


load_s3_model()
