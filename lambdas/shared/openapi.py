"""The OpenAPI 3 documents of our APIs, generated from the resolvers' own routes.

Powertools lists every route with its path parameters; each route adds, via
``openapi_extensions=spec(...)``, its success status, its request body (a seed
schema, or raw bytes) and the errors it can answer. :func:`document` turns that
into request bodies and responses, so the routes stay the one source of truth.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

import ipoc
from ipoc import schemas

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


def spec(success: int, *errors: int, request: str | None = None, success_text: str = "Success") -> dict[str, Any]:
    """Route metadata: ``request`` is a schema kind (``function``, ``vaas``, ``s3_app_input``), ``json`` or ``binary``."""
    return {EXTENSION: {"success": success, "errors": sorted({*errors, 500}), "request": request, "text": success_text}}


def document(app: APIGatewayRestResolver, title: str, description: str) -> dict[str, Any]:
    doc = json.loads(app.get_openapi_json_schema(title=title, version=ipoc.__version__, description=description))
    admin = {
        (route.openapi_path, route.method.lower())
        for route in (*app._static_routes, *app._dynamic_routes)  # Powertools keeps no public route list
        if any(getattr(m, "__name__", "") == "admin_only" for m in route.middlewares or [])
    }
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path, path_item in doc.get("paths", {}).items():
        for method, operation in path_item.items():
            operation[ADMIN_EXTENSION] = (path, method) in admin
            meta = operation.pop(EXTENSION, None)
            if meta is None:
                raise ValueError(f"route {operation.get('summary')} has no openapi_extensions=spec(...)")
            responses: dict[str, Any] = {
                str(meta["success"]): {"description": meta["text"], "content": {"application/json": {"schema": {"type": "object"}}}}
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
                operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
            elif request is not None:
                name = f"{request}_document"
                schema = dict(schemas.schema(request))  # type: ignore[arg-type]
                schema.pop("$schema", None)
                components[name] = schema
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                }
    return doc
