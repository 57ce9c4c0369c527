"""HTTP plumbing shared by the three APIs: domain errors to statuses, JSON responses.

Routes raise ``ipoc.errors`` exceptions; :func:`install_error_handlers` maps
them once per resolver to ``{"error": ..., "message": ...}`` with the right
status, and turns anything unexpected into a 500 that leaks no detail.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound

from ipoc import errors

STATUS: dict[type[errors.IpocError], int] = {
    errors.ValidationError: 400,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.HashMismatch: 422,
    errors.DependencyFailed: 502,
    errors.VeracruzError: 502,
    errors.NoCapacity: 507,
}


def status_for(exc: errors.IpocError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def json_response(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def error_response(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": code, "message": message})


def install_error_handlers(app: APIGatewayRestResolver, logger: Logger) -> None:
    @app.exception_handler(errors.IpocError)
    def domain_error(exc: errors.IpocError) -> Response:
        status = status_for(exc)
        logger.info("request refused", extra={"status": status, "error": exc.code})
        return error_response(status, exc.code, exc.message)

    @app.not_found
    def no_route(exc: RouteNotFound) -> Response:
        event = app.current_event
        return error_response(404, "NoSuchRoute", f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def unexpected(exc: Exception) -> Response:
        logger.exception("unexpected error")
        return error_response(500, "InternalError", "the service failed unexpectedly; the request id is in its logs")
