"""The OpenAPI documents are generated from the routes and are valid OpenAPI 3."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from lambdas.openapi import APIS, api_document


@pytest.mark.parametrize("api", list(APIS))
def test_documents_are_valid_openapi(api, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    document = api_document(api)
    validate(document)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            assert "500" in operation["responses"]
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)


def test_every_seed_route_is_documented(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    documented = {
        (method.upper(), path)
        for api in APIS
        for path, item in api_document(api)["paths"].items()
        for method in item
    }
    seed_routes = {
        ("POST", "/function"), ("GET", "/function"), ("GET", "/function/{name}"), ("DELETE", "/function/{name}"),
        ("POST", "/function/{name}/program/{segment}"), ("GET", "/function/{name}/program"),
        ("GET", "/function/{name}/program/{segment}"), ("DELETE", "/function/{name}/program/{segment}"),
        ("POST", "/function/{name}/data_file/{segment}"), ("GET", "/function/{name}/data_file"),
        ("GET", "/function/{name}/data_file/{segment}"), ("DELETE", "/function/{name}/data_file/{segment}"),
        ("POST", "/veracruz"), ("GET", "/veracruz"), ("GET", "/veracruz/{name}"), ("DELETE", "/veracruz/{name}"),
        ("POST", "/s3_stream_veracruz"),
        ("POST", "/instance"), ("GET", "/instance"), ("GET", "/instance/{instance_id}"), ("DELETE", "/instance/{instance_id}"),
    }
    assert seed_routes <= documented
    register = api_document("ccfaas")["paths"]["/function"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/function_document"}
