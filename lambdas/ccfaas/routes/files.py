"""Program and data-file routes; ``<segment>`` is the base64 of the enclave path, as the original.

``/program/`` and ``/data_file/`` have the same six routes, each declared here with its own
decorator; both kinds share the bodies below (``kind`` is the only difference). Powertools makes
the OpenAPI operationIds from the function names, so ``listing_program`` & co. keep the published ids.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lambdas.ccfaas.registry import LOADED, Kind
from lambdas.ccfaas.services import services
from lambdas.shared.api import raw_body, spec
from lambdas.shared.http import json_response

router = APIGatewayRouter()


# -- the bodies both kinds share ---------------------------------------------------------------------


def _upload(name: str, kind: Kind, segment: str) -> Response[dict[str, Any]]:
    return json_response(201, services(router).registry.upload(name, kind, segment, raw_body(router.current_event)))


def _listing(name: str, kind: Kind) -> Response[dict[str, Any]]:
    files = services(router).registry.list_files(name, kind)
    return json_response(200, {f"{kind}s": [f["name"] for f in files if f["status"] == LOADED], "files": files})


def _show(name: str, kind: Kind, segment: str) -> Response[dict[str, Any]]:
    return json_response(200, services(router).registry.file_status(name, kind, segment))


def _delete(name: str, kind: Kind, segment: str) -> Response[dict[str, Any]]:
    return json_response(200, services(router).registry.delete_file(name, kind, segment))


def _start_upload(name: str, kind: Kind, segment: str) -> Response[dict[str, Any]]:
    return json_response(201, services(router).registry.start_upload(name, kind, segment))


def _complete_upload(name: str, kind: Kind, segment: str) -> Response[dict[str, Any]]:
    return json_response(201, services(router).registry.complete_upload(name, kind, segment))


# -- programs ----------------------------------------------------------------------------------------


@router.post(
    "/function/<name>/program/<segment>",
    summary="Upload a program in the request body (hash-checked)",
    tags=["programs"],
    **spec(201, 400, 403, 404, 409, 413, 422, admin=True, request="binary"),
)
def upload_program(name: str, segment: str) -> Response[dict[str, Any]]:
    return _upload(name, "program", segment)


@router.get(
    "/function/<name>/program",
    summary="List a function's programs and whether each is loaded",
    tags=["programs"],
    **spec(200, 403, 404, admin=True),
)
def listing_program(name: str) -> Response[dict[str, Any]]:
    return _listing(name, "program")


@router.get(
    "/function/<name>/program/<segment>",
    summary="Show one program's status",
    tags=["programs"],
    **spec(200, 400, 403, 404, admin=True),
)
def show_program(name: str, segment: str) -> Response[dict[str, Any]]:
    return _show(name, "program", segment)


@router.delete(
    "/function/<name>/program/<segment>",
    summary="Delete a loaded program's binary",
    tags=["programs"],
    **spec(200, 400, 403, 404, 409, admin=True),
)
def delete_program(name: str, segment: str) -> Response[dict[str, Any]]:
    return _delete(name, "program", segment)


@router.post(
    "/function/<name>/program/<segment>/upload",
    summary="Start a presigned upload of a large program",
    tags=["programs"],
    **spec(201, 400, 403, 404, 409, admin=True),
)
def start_upload_program(name: str, segment: str) -> Response[dict[str, Any]]:
    return _start_upload(name, "program", segment)


@router.post(
    "/function/<name>/program/<segment>/upload/complete",
    summary="Verify and keep a presigned upload of a program",
    tags=["programs"],
    **spec(201, 400, 403, 404, 409, 413, 422, 502, admin=True),
)
def complete_upload_program(name: str, segment: str) -> Response[dict[str, Any]]:
    return _complete_upload(name, "program", segment)


# -- data files --------------------------------------------------------------------------------------


@router.post(
    "/function/<name>/data_file/<segment>",
    summary="Upload a data file in the request body (hash-checked)",
    tags=["data_files"],
    **spec(201, 400, 403, 404, 409, 413, 422, admin=True, request="binary"),
)
def upload_data_file(name: str, segment: str) -> Response[dict[str, Any]]:
    return _upload(name, "data_file", segment)


@router.get(
    "/function/<name>/data_file",
    summary="List a function's data files and whether each is loaded",
    tags=["data_files"],
    **spec(200, 403, 404, admin=True),
)
def listing_data_file(name: str) -> Response[dict[str, Any]]:
    return _listing(name, "data_file")


@router.get(
    "/function/<name>/data_file/<segment>",
    summary="Show one data file's status",
    tags=["data_files"],
    **spec(200, 400, 403, 404, admin=True),
)
def show_data_file(name: str, segment: str) -> Response[dict[str, Any]]:
    return _show(name, "data_file", segment)


@router.delete(
    "/function/<name>/data_file/<segment>",
    summary="Delete a loaded data file's binary",
    tags=["data_files"],
    **spec(200, 400, 403, 404, 409, admin=True),
)
def delete_data_file(name: str, segment: str) -> Response[dict[str, Any]]:
    return _delete(name, "data_file", segment)


@router.post(
    "/function/<name>/data_file/<segment>/upload",
    summary="Start a presigned upload of a large data file",
    tags=["data_files"],
    **spec(201, 400, 403, 404, 409, admin=True),
)
def start_upload_data_file(name: str, segment: str) -> Response[dict[str, Any]]:
    return _start_upload(name, "data_file", segment)


@router.post(
    "/function/<name>/data_file/<segment>/upload/complete",
    summary="Verify and keep a presigned upload of a data file",
    tags=["data_files"],
    **spec(201, 400, 403, 404, 409, 413, 422, 502, admin=True),
)
def complete_upload_data_file(name: str, segment: str) -> Response[dict[str, Any]]:
    return _complete_upload(name, "data_file", segment)
