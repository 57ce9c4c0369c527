"""infra/ builds API Gateway from the checked-in OpenAPI documents (``infra/openapi/*.json``, written by
``make openapi``): they must equal what the routes generate now, and reading them imports no handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.constructs.api import DOCUMENTS, SERVICES
from lambdas.openapi import APIS, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("api", list(APIS))
def test_the_checked_in_documents_are_what_the_routes_generate(api, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    path = DOCUMENTS / f"{api}.json"
    assert path.exists(), f"{path.relative_to(ROOT)} is missing: run `make openapi` and commit it"
    assert path.read_text(encoding="utf-8") == render(api), (
        f"{path.relative_to(ROOT)} differs from the routes: run `make openapi` and commit it"
    )


def test_infra_reads_a_document_for_each_api_and_nothing_else():
    assert set(SERVICES) == set(APIS)
    assert sorted(p.name for p in DOCUMENTS.iterdir()) == sorted(f"{api}.json" for api in APIS)


def test_building_the_api_imports_no_handler_route_or_client_module():
    """Checked at run time, not only by import statements: the old code imported the handlers through importlib."""
    program = """
import json, sys
import infra.app
from infra.constructs.api import gateway_document, route_patterns
gateway_document({"ccfaas": "C", "vaas": "V", "s3stream": "S"})
route_patterns(admin=True)
ours = ("lambdas", "client", "local", "runtime", "tests")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ours)))
"""
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    assert modules, "the probe saw no module of ours: is it importing what infra imports?"
    assert all(m == "lambdas" or m.startswith("lambdas.shared") for m in modules), modules
