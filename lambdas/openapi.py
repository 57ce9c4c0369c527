"""The OpenAPI documents of the three APIs, built from their resolvers.

The local stack serves them at ``/openapi.json``. ``make openapi`` (``python -m
lambdas.openapi infra/openapi``) writes them to ``infra/openapi/<api>.json``, the
checked-in copies infra/ builds API Gateway from without importing a handler; a test
regenerates them and fails when a copy is stale.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from lambdas.shared.openapi import document

APIS = {
    "ccfaas": (
        "lambdas.ccfaas.handler",
        "i-PoC CCFaaS",
        "Register functions (policies, programs, data files) and run instances.",
    ),
    "vaas": ("lambdas.vaas.handler", "i-PoC VaaS", "Veracruz as a Service: attested runtimes from VaaS policies."),
    "s3stream": ("lambdas.s3stream.handler", "i-PoC S3 streamer", "Stream an S3 object into a Veracruz instance."),
}


def api_document(api: str) -> dict[str, Any]:
    module, title, description = APIS[api]
    return document(importlib.import_module(module).app, title, description)


def render(api: str) -> str:
    """The document as the checked-in file holds it.

    Powertools' key order (no sorting), so a diff reads as the routes.
    """
    return json.dumps(api_document(api), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for api in APIS:
        path = directory / f"{api}.json"
        path.write_text(render(api), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lambdas.openapi DIRECTORY   (make openapi writes infra/openapi/)", file=sys.stderr)
        return 2
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")  # the handlers' Tracer: no X-Ray daemon to talk to here
    for path in write(Path(argv[0])):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
