"""The OpenAPI documents of the three APIs (served by the local stack at /openapi.json)."""

from __future__ import annotations

import importlib
from typing import Any

from lambdas.shared.openapi import document

APIS = {
    "ccfaas": ("lambdas.ccfaas.handler", "i-PoC CCFaaS", "Register functions (policies, programs, data files) and run instances."),
    "vaas": ("lambdas.vaas.handler", "i-PoC VaaS", "Veracruz as a Service: attested runtimes from VaaS policies."),
    "s3stream": ("lambdas.s3stream.handler", "i-PoC S3 streamer", "Stream an S3 object into a Veracruz instance."),
}


def api_document(api: str) -> dict[str, Any]:
    module, title, description = APIS[api]
    return document(importlib.import_module(module).app, title, description)
