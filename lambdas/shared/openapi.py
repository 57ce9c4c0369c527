"""The OpenAPI 3 documents of our APIs, generated from the resolvers' own routes.

Each route declares, via ``openapi_extensions`` (built by
:func:`lambdas.shared.api.spec`), its success status, its request body (a seed
schema, or raw bytes), the errors it can answer and whether it is admin-only.
:func:`document` asks Powertools for the route list through its public
``get_openapi_json_schema`` and turns those declarations into request bodies and
responses, so the routes stay the one source of truth. The admin flag stays in
the document (``x-ipoc-admin``): infra/ builds API Gateway's resource policy and
the users' managed policy from it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import ipoc
from ipoc import schemas

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

EXTENSION = "x-ipoc"
ADMIN_EXTENSION = "x-ipoc-admin"  # the route runs the admin middleware (the AWS API limits it to admins too)
ERROR_TEXT = {
    400: "Invalid input (the message names the JSON path)",
    403: "The caller may not use this route",
    404: "Unknown function, file or instance",
    409: "Conflicts with the current state (exists, already loaded, in use)",
    413: "Too large",
    422: "The bytes do not hash to the policy's pi_hash",
    502: "A dependency (S3, a runtime, Kubernetes) failed; the message names it and the step",
    507: "No free runtime slot",
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}


def extensions(
    success: int, *errors: int, admin: bool, request: str | None = None, success_text: str = "Success"
) -> dict[str, Any]:
    """A route's ``openapi_extensions``: ``request`` is a schema kind (``function``, ``vaas``, ``s3_app_input``),
    ``json`` or ``binary``; an admin-only route can always answer 403."""
    statuses = {*errors, 500, *((403,) if admin else ())}
    return {
        EXTENSION: {"success": success, "errors": sorted(statuses), "request": request, "text": success_text},
        ADMIN_EXTENSION: admin,
    }


def document(app: APIGatewayRestResolver, title: str, description: str) -> dict[str, Any]:
    doc = json.loads(app.get_openapi_json_schema(title=title, version=ipoc.__version__, description=description))
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path, path_item in doc.get("paths", {}).items():
        for method, operation in path_item.items():
            meta = operation.pop(EXTENSION, None)
            if meta is None or not isinstance(operation.get(ADMIN_EXTENSION), bool):
                raise ValueError(
                    f"{method.upper()} {path} is not declared with **spec(..., admin=...) (lambdas.shared.api)"
                )
            responses: dict[str, Any] = {
                str(meta["success"]): {
                    "description": meta["text"],
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            }
            for status in meta["errors"]:
                responses[str(status)] = {
                    "description": ERROR_TEXT.get(status, "Unexpected failure"),
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            operation["responses"] = responses
            request = meta["request"]
            if request == "binary":
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                }
            elif request == "json":
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            elif request is not None:
                name = f"{request}_document"
                schema = dict(schemas.schema(request))
                schema.pop("$schema", None)
                components[name] = schema
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                }
    return doc
