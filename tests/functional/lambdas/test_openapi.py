"""The OpenAPI documents are generated from the routes, are valid OpenAPI 3, and each route's ``admin`` flag is
both what the document says (infra/ builds API Gateway's resource policy from it) and what the Lambda does."""

from __future__ import annotations

import importlib

import pytest
from openapi_spec_validator import validate

from lambdas.openapi import APIS, api_document
from lambdas.shared.openapi import ADMIN_EXTENSION
from local.apigw import principal_arn
from tests.support.aws import b64, call

# Written by hand, not derived: the registry, its files and VaaS are for administrators; instances and the
# streamer for every user. A route added or a flag changed must change this list too.
ADMIN_ROUTES = {
    ("POST", "/function"),
    ("GET", "/function"),
    ("GET", "/function/{name}"),
    ("DELETE", "/function/{name}"),
    ("GET", "/function/{name}/status"),
    ("POST", "/function/{name}/versions"),
    ("GET", "/function/{name}/versions"),
    ("GET", "/function/{name}/versions/{version}"),
    ("DELETE", "/function/{name}/versions/{version}"),
    ("GET", "/function/{name}/aliases"),
    ("PUT", "/function/{name}/aliases/{alias}"),
    ("DELETE", "/function/{name}/aliases/{alias}"),
    ("POST", "/function/{name}/program/{segment}"),
    ("GET", "/function/{name}/program"),
    ("GET", "/function/{name}/program/{segment}"),
    ("DELETE", "/function/{name}/program/{segment}"),
    ("POST", "/function/{name}/program/{segment}/upload"),
    ("POST", "/function/{name}/program/{segment}/upload/complete"),
    ("POST", "/function/{name}/data_file/{segment}"),
    ("GET", "/function/{name}/data_file"),
    ("GET", "/function/{name}/data_file/{segment}"),
    ("DELETE", "/function/{name}/data_file/{segment}"),
    ("POST", "/function/{name}/data_file/{segment}/upload"),
    ("POST", "/function/{name}/data_file/{segment}/upload/complete"),
    ("POST", "/veracruz"),
    ("GET", "/veracruz"),
    ("GET", "/veracruz/{name}"),
    ("DELETE", "/veracruz/{name}"),
}
USER_ROUTES = {
    ("POST", "/instance"),
    ("GET", "/instance"),
    ("GET", "/instance/{instance_id}"),
    ("DELETE", "/instance/{instance_id}"),
    ("POST", "/s3_stream_veracruz"),
}
PATH_VALUES = {
    "name": "vod",
    "segment": b64("/program/detector.wasm"),
    "version": "1",
    "alias": "prod",
    "instance_id": "no-such-instance",
}
MALLORY = "mallory"  # an authenticated caller who is not an administrator


@pytest.fixture(autouse=True)
def no_tracing(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")


def operations() -> list[tuple[str, str, str, dict]]:
    """``(api, METHOD, path, operation)`` for every route of every document."""
    return [
        (api, method.upper(), path, operation)
        for api in APIS
        for path, item in api_document(api)["paths"].items()
        for method, operation in item.items()
    ]


@pytest.mark.parametrize("api", list(APIS))
def test_documents_are_valid_openapi(api):
    document = api_document(api)
    validate(document)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            assert "500" in operation["responses"]
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)


def test_every_seed_route_is_documented():
    documented = {(method, path) for _, method, path, _ in operations()}
    seed_routes = {
        ("POST", "/function"),
        ("GET", "/function"),
        ("GET", "/function/{name}"),
        ("DELETE", "/function/{name}"),
        ("POST", "/function/{name}/program/{segment}"),
        ("GET", "/function/{name}/program"),
        ("GET", "/function/{name}/program/{segment}"),
        ("DELETE", "/function/{name}/program/{segment}"),
        ("POST", "/function/{name}/data_file/{segment}"),
        ("GET", "/function/{name}/data_file"),
        ("GET", "/function/{name}/data_file/{segment}"),
        ("DELETE", "/function/{name}/data_file/{segment}"),
        ("POST", "/veracruz"),
        ("GET", "/veracruz"),
        ("GET", "/veracruz/{name}"),
        ("DELETE", "/veracruz/{name}"),
        ("POST", "/s3_stream_veracruz"),
        ("POST", "/instance"),
        ("GET", "/instance"),
        ("GET", "/instance/{instance_id}"),
        ("DELETE", "/instance/{instance_id}"),
    }
    assert seed_routes <= documented
    register = api_document("ccfaas")["paths"]["/function"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/function_document"
    }


def test_the_admin_routes_are_exactly_the_expected_list():
    flags = {(method, path): operation[ADMIN_EXTENSION] for _, method, path, operation in operations()}
    assert all(isinstance(flag, bool) for flag in flags.values())  # every route says, none is left to a default
    assert {route for route, admin in flags.items() if admin} == ADMIN_ROUTES
    assert {route for route, admin in flags.items() if not admin} == USER_ROUTES
    for _, method, path, operation in operations():
        if operation[ADMIN_EXTENSION]:
            assert "403" in operation["responses"], (method, path)  # an admin-only route documents its refusal


def refused_as_non_admin(reply, user: str) -> bool:
    """The admin middleware's own refusal (lambdas.shared.auth.require_admin), not a 403 of a route's body."""
    return (
        reply.status == 403
        and reply.json["error"] == "Forbidden"
        and reply.json["message"].startswith(f"{principal_arn(user)} is not an i-PoC administrator")
    )


def test_each_route_does_what_its_admin_flag_says(aws):
    """Every documented route, through the real handler and resolver: an admin-only route refuses a non-admin
    before its body runs and lets the admin through; any other route lets a non-admin through."""
    handlers = {api: importlib.import_module(module).lambda_handler for api, (module, _, _) in APIS.items()}
    seen = []
    for api, method, template, operation in operations():
        path = template.format(**PATH_VALUES)
        as_user = call(handlers[api], method, path, user=MALLORY)
        if operation[ADMIN_EXTENSION]:
            assert refused_as_non_admin(as_user, MALLORY), (method, template, as_user.status, as_user.body)
            as_admin = call(handlers[api], method, path)
            assert not refused_as_non_admin(as_admin, "local-admin") and as_admin.status < 500, (
                method,
                template,
                as_admin.status,
                as_admin.body,
            )
        else:
            assert not refused_as_non_admin(as_user, MALLORY) and as_user.status < 500, (
                method,
                template,
                as_user.status,
                as_user.body,
            )
        seen.append((method, template))
    assert set(seen) == ADMIN_ROUTES | USER_ROUTES
    # AND the non-admin's calls changed nothing: the registry is still empty
    assert call(handlers["ccfaas"], "GET", "/function").json == {"functions": []}
