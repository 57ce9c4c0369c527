"""Function routes: register (publish), list, show, status, delete; versions and aliases.

A ``<name>`` may be a reference: ``name`` (the latest version), ``name:VERSION``
or ``name:ALIAS``, so the seed's routes address the latest version unchanged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from ipoc.errors import ValidationError
from ipoc.function_names import check_function_name
from lambdas.ccfaas.registry import LOADED, MAX_VERSION, Registry, describe, parse_reference, version_view
from lambdas.ccfaas.services import services
from lambdas.shared.api import json_body, spec
from lambdas.shared.http import json_response

router = APIGatewayRouter()


def registry() -> Registry:
    return services(router).registry


@router.post(
    "/function",
    summary="Register a function, or publish its next version (identical content: 200, no new version)",
    tags=["functions"],
    **spec(201, 400, 403, 409, admin=True, request="function"),
)
def register() -> Response[dict[str, Any]]:
    policy = json_body(router.current_event)
    record, created = registry().publish(policy)
    return json_response(201 if created else 200, record.policy)


@router.get("/function", summary="List registered functions", tags=["functions"], **spec(200, 403, admin=True))
def list_functions() -> Response[dict[str, Any]]:
    return json_response(200, {"functions": registry().names()})


@router.get(
    "/function/<name>",
    summary="Show a function's policy (name: the latest; name:VERSION or name:ALIAS)",
    tags=["functions"],
    **spec(200, 400, 403, 404, admin=True),
)
def show(name: str) -> Response[dict[str, Any]]:
    return json_response(200, registry().get(name).policy)


@router.get(
    "/function/<name>/status",
    summary="Show whether every file of a function version is loaded",
    tags=["functions"],
    **spec(200, 400, 403, 404, admin=True),
)
def status(name: str) -> Response[dict[str, Any]]:
    record = registry().get(name)
    files = [describe(path, entry) for path, entry in record.files.items()]
    return json_response(
        200,
        {
            "function": record.name,
            "version": record.version,
            "loaded": all(f["status"] == LOADED for f in files),
            "files": files,
        },
    )


@router.delete(
    "/function/<name>",
    summary="Delete a function: every version and its binaries (not while used)",
    tags=["functions"],
    **spec(200, 403, 404, 409, admin=True),
)
def delete(name: str) -> Response[dict[str, Any]]:
    registry().delete(_plain_name(name))
    return json_response(200, {"deleted": name})


# -- versions --------------------------------------------------------------------------------------


@router.post(
    "/function/<name>/versions",
    summary="Publish a function policy as the function's next version",
    tags=["versions"],
    **spec(
        201, 400, 403, 409, admin=True, request="function", success_text="Created (200: the latest has this content)"
    ),
)
def publish(name: str) -> Response[dict[str, Any]]:
    policy = json_body(router.current_event)
    if not isinstance(policy, dict):
        raise ValidationError("the body must be a function policy (a JSON object)")
    if check_function_name(policy.get("function")) != name:  # a name the rule refuses is told so first
        raise ValidationError(f"$.function must be {name!r}, the function this route publishes", path="$.function")
    service = registry()
    record, created = service.publish(policy)
    return json_response(201 if created else 200, {**version_view(record, service.aliases(name)), "created": created})


@router.get(
    "/function/<name>/versions",
    summary="List a function's versions and aliases",
    tags=["versions"],
    **spec(200, 400, 403, 404, admin=True),
)
def versions(name: str) -> Response[dict[str, Any]]:
    service = registry()
    name = _plain_name(name)
    aliases = service.aliases(name)
    return json_response(
        200,
        {
            "function": name,
            "latest": aliases["latest"],
            "aliases": aliases,
            "versions": [version_view(v, aliases) for v in service.versions(name)],
        },
    )


@router.get(
    "/function/<name>/versions/<version>",
    summary="Show one version (a number or an alias) with its policy",
    tags=["versions"],
    **spec(200, 400, 403, 404, admin=True),
)
def show_version(name: str, version: str) -> Response[dict[str, Any]]:
    service = registry()
    record = service.get(f"{_plain_name(name)}:{version}")
    return json_response(200, {**version_view(record, service.aliases(record.name)), "policy": record.policy})


@router.delete(
    "/function/<name>/versions/<version>",
    summary="Delete a version (refused while instances use it or an alias points at it)",
    tags=["versions"],
    **spec(200, 400, 403, 404, 409, admin=True),
)
def delete_version(name: str, version: str) -> Response[dict[str, Any]]:
    if not (version.isascii() and version.isdigit()) or not 0 < int(version) <= MAX_VERSION:
        raise ValidationError(f"{version!r} is not a version number; delete versions by number (1, 2, ...)")
    registry().delete_version(_plain_name(name), int(version))
    return json_response(200, {"deleted": {"function": name, "version": int(version)}})


# -- aliases -----------------------------------------------------------------------------------------


@router.get(
    "/function/<name>/aliases",
    summary="List a function's aliases (latest included)",
    tags=["versions"],
    **spec(200, 400, 403, 404, admin=True),
)
def aliases(name: str) -> Response[dict[str, Any]]:
    name = _plain_name(name)
    return json_response(200, {"function": name, "aliases": registry().aliases(name)})


@router.put(
    "/function/<name>/aliases/<alias>",
    summary="Point an alias at a version (create it, or move it: a rollback)",
    tags=["versions"],
    **spec(200, 400, 403, 404, 409, admin=True, request="json"),
)
def set_alias(name: str, alias: str) -> Response[dict[str, Any]]:
    body = json_body(router.current_event)
    version = body.get("version") if isinstance(body, dict) else None
    name = _plain_name(name)
    return json_response(200, {"function": name, "aliases": registry().set_alias(name, alias, version)})


@router.delete(
    "/function/<name>/aliases/<alias>",
    summary="Delete an alias (not latest)",
    tags=["versions"],
    **spec(200, 400, 403, 404, admin=True),
)
def delete_alias(name: str, alias: str) -> Response[dict[str, Any]]:
    name = _plain_name(name)
    return json_response(200, {"function": name, "aliases": registry().delete_alias(name, alias)})


def _plain_name(name: str) -> str:
    """Routes about a whole function take its plain name, not a reference."""
    plain, selector = parse_reference(name)
    if selector is not None:
        raise ValidationError(f"{name!r}: this route takes a function name without ':VERSION' or ':ALIAS'")
    return plain
