"""S3 streamer Lambda entry point."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.s3stream.routes import stream
from lambdas.shared.api import capture_lambda_handler, make_resolver

logger = Logger()
tracer = Tracer()
app = make_resolver(logger)
app.include_router(stream.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@capture_lambda_handler(tracer)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
