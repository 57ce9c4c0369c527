"""Program and data-file routes; ``<segment>`` is the base64 of the enclave path, as the original.

The same handlers serve ``/program/`` and ``/data_file/``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lambdas.ccfaas.registry import KINDS, LOADED, Kind
from lambdas.ccfaas.services import services
from lambdas.shared.api import admin_only, raw_body
from lambdas.shared.http import json_response
from lambdas.shared.openapi import spec

router = APIGatewayRouter()
ADMIN = [admin_only]  # registry and VaaS routes are for administrators


def _routes(kind: Kind) -> None:
    label = kind.replace("_", " ")
    base = f"/function/<name>/{kind}"

    def upload(name: str, segment: str) -> Response[dict[str, Any]]:
        return json_response(201, services(router).registry.upload(name, kind, segment, raw_body(router.current_event)))

    def listing(name: str) -> Response[dict[str, Any]]:
        files = services(router).registry.list_files(name, kind)
        return json_response(200, {f"{kind}s": [f["name"] for f in files if f["status"] == LOADED], "files": files})

    def show(name: str, segment: str) -> Response[dict[str, Any]]:
        return json_response(200, services(router).registry.file_status(name, kind, segment))

    def delete(name: str, segment: str) -> Response[dict[str, Any]]:
        return json_response(200, services(router).registry.delete_file(name, kind, segment))

    def start_upload(name: str, segment: str) -> Response[dict[str, Any]]:
        return json_response(201, services(router).registry.start_upload(name, kind, segment))

    def complete_upload(name: str, segment: str) -> Response[dict[str, Any]]:
        return json_response(201, services(router).registry.complete_upload(name, kind, segment))

    handlers = [
        (router.post, f"{base}/<segment>", upload, f"Upload a {label} in the request body (hash-checked)",
         spec(201, 400, 403, 404, 409, 413, 422, request="binary")),
        (router.get, base, listing, f"List a function's {label}s and whether each is loaded", spec(200, 403, 404)),
        (router.get, f"{base}/<segment>", show, f"Show one {label}'s status", spec(200, 400, 403, 404)),
        (router.delete, f"{base}/<segment>", delete, f"Delete a loaded {label}'s binary", spec(200, 400, 403, 404, 409)),
        (router.post, f"{base}/<segment>/upload", start_upload, f"Start a presigned upload of a large {label}",
         spec(201, 400, 403, 404, 409)),
        (router.post, f"{base}/<segment>/upload/complete", complete_upload,
         f"Verify and keep a presigned upload of a {label}", spec(201, 400, 403, 404, 409, 413, 422, 502)),
    ]
    for method, rule, handler, summary, extensions in handlers:
        handler.__name__ = f"{handler.__name__}_{kind}"
        method(rule, summary=summary, tags=[f"{kind}s"], openapi_extensions=extensions, middlewares=ADMIN)(handler)


for _kind in KINDS:
    _routes(_kind)
