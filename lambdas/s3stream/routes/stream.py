"""The S3 streamer's one route."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lambdas.s3stream.streamer import parse_request, stream
from lambdas.shared.api import json_body, spec
from lambdas.shared.config import settings
from lambdas.shared.http import json_response
from lambdas.shared.stream_access import authorise

router = APIGatewayRouter()
logger = Logger(child=True)


@router.post(
    "/s3_stream_veracruz",
    summary="Stream an S3 object into a Veracruz instance",
    tags=["s3 streamer"],
    **spec(200, 400, 403, 502, admin=False, request="s3_app_input"),
)
def stream_object() -> Response[dict[str, Any]]:
    request = parse_request(json_body(router.current_event))
    authorise(
        router.current_event.raw_event,
        bucket=request.bucket,
        key=request.key,
        policy_text=request.policy,
        with_credentials=bool(request.credentials),
    )
    logger.info("streaming", extra={"source": f"s3://{request.bucket}/{request.key}", "target": request.filename})
    return json_response(200, stream(request, settings().stream_chunk, logger.info))
