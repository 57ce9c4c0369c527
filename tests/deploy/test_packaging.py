"""Packaging: each Lambda as deployed — its synthesized code asset plus the dependencies layer — imports and
answers one real event in an isolated interpreter.

The interpreter runs with ``-I -S``: no PYTHONPATH, no user or site packages, so nothing of the development
environment is on ``sys.path``; only the code asset from ``cdk.out`` and the layer's package set (the exact
name==version list found in the synthesized layer asset, installed for this interpreter, as the layer itself
is built for Lambda's python3.14, which cannot run here) are. A module missing from the asset or a
dependency missing from the layer fails here as it would in Lambda. Each event really reaches AWS: a moto
server stands in for it. Each handler's import time (the cold start's init) is measured and printed, and
the kubernetes client may only be loaded by the functions that talk to EKS.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.shared.tables import FUNCTIONS, INSTANCES, SLOTS
from local.apigw import build_event, principal_arn
from tests.deploy.conftest import assembly_directory, stack_template

ROOT = Path(__file__).resolve().parents[2]
LOCAL_LAYERS = ROOT / "build" / "test" / "lambda-deps-local"
MARK = "PACKAGING-RESULT "
# Who may load the kubernetes client: the functions that reach EKS (VaaS, and the tasks and reaper through it).
KUBERNETES_USERS = {"lambdas.vaas.handler", "lambdas.ccfaas.tasks", "lambdas.ccfaas.reaper"}
REGION = "us-east-1"

DRIVER = r"""
import importlib, json, sys, time
code, layer, handler_path, event_json = sys.argv[1:5]
isolated_path = list(sys.path)
sys.path[:0] = [code, layer]
module_name, _, attribute = handler_path.rpartition(".")
started = time.perf_counter()
module = importlib.import_module(module_name)
import_seconds = time.perf_counter() - started
handler = getattr(module, attribute)


class Context:
    function_name = "packaging-check"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:packaging-check"
    aws_request_id = "packaging-1"
    log_group_name = "/aws/lambda/packaging-check"
    log_stream_name = "packaging"

    @staticmethod
    def get_remaining_time_in_millis():
        return 60000


started = time.perf_counter()
result = handler(json.loads(event_json), Context())
files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
print("PACKAGING-RESULT " + json.dumps({
    "import_seconds": import_seconds, "call_seconds": time.perf_counter() - started, "result": result,
    "isolated_path": isolated_path, "files": files, "kubernetes": "kubernetes" in sys.modules,
}))
"""


def lambda_functions(template: dict) -> dict[str, dict[str, Any]]:
    """Our Lambdas (handler in ``lambdas.``) by logical id: handler, code asset hash, layer logical ids."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and str(properties.get("Handler", "")).startswith("lambdas."):
            found[logical_id] = {
                "handler": properties["Handler"],
                "asset": properties["Code"]["S3Key"].removesuffix(".zip"),
                "layers": [layer["Ref"] for layer in properties.get("Layers", [])],
                "runtime": properties["Runtime"],
            }
    return found


def layer_pins(layer_python: Path) -> list[str]:
    """name==version of every distribution in a layer's ``python/`` directory (from its dist-info)."""
    pins = []
    for metadata in sorted(layer_python.glob("*.dist-info/METADATA")):
        fields = dict(re.findall(r"^(Name|Version): (.+)$", metadata.read_text(errors="replace"), re.M))
        pins.append(f"{fields['Name']}=={fields['Version']}")
    return pins


def install_for_this_interpreter(pins: list[str]) -> Path:
    """The layer's package set installed for this interpreter (once per set: pip's cache makes reinstalls quick)."""
    key = hashlib.sha256("\n".join([sys.version, *pins]).encode()).hexdigest()[:16]
    target = LOCAL_LAYERS / key
    if (target / ".complete").exists():
        return target
    staging = LOCAL_LAYERS / f".{key}.partial"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-warn-conflicts",
            "--only-binary=:all:",
            "--target",
            str(staging),
            *pins,
        ],
        check=True,
        timeout=900,
    )
    (staging / ".complete").write_text("\n".join(pins) + "\n")
    if target.exists():
        import shutil

        shutil.rmtree(target)
    staging.rename(target)
    return target


@pytest.fixture(scope="module")
def deployed(synth) -> dict[str, Any]:
    template = stack_template(synth)
    functions = lambda_functions(template)
    assert len(functions) == 6, sorted(functions)
    layer_ids = {layer for f in functions.values() for layer in f["layers"]}
    assert len(layer_ids) == 1, layer_ids
    layer = template["Resources"][layer_ids.pop()]["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    directory = Path(assembly_directory(synth))
    pins = layer_pins(directory / f"asset.{layer}" / "python")
    return {"functions": functions, "directory": directory, "layer": install_for_this_interpreter(pins), "pins": pins}


@pytest.fixture(scope="module")
def aws_env(moto_server) -> dict[str, str]:
    """Tables, bucket and secrets in the moto server; the environment a deployed Lambda would have."""
    names = {
        "IPOC_FUNCTIONS_TABLE": "pkg-functions",
        "IPOC_INSTANCES_TABLE": "pkg-instances",
        "IPOC_SLOTS_TABLE": "pkg-slots",
        "IPOC_ARTIFACTS_BUCKET": "pkg-artifacts",
    }
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    dynamodb = session.client("dynamodb", endpoint_url=moto_server)
    for spec, name in (
        (FUNCTIONS, names["IPOC_FUNCTIONS_TABLE"]),
        (INSTANCES, names["IPOC_INSTANCES_TABLE"]),
        (SLOTS, names["IPOC_SLOTS_TABLE"]),
    ):
        dynamodb.create_table(**spec.create_table_kwargs(name))
    session.client("s3", endpoint_url=moto_server).create_bucket(Bucket=names["IPOC_ARTIFACTS_BUCKET"])
    secrets = session.client("secretsmanager", endpoint_url=moto_server)
    # As CloudFormation creates them (GenerateSecretString): a random string until the setup function fills them
    arns = {
        name: secrets.create_secret(Name=f"pkg-{name}", SecretString=secrets.get_random_password()["RandomPassword"])[
            "ARN"
        ]
        for name in ("program-load", "ca-cert", "ca-key")
    }
    from ipoc.certs import new_certificate_authority

    ca = new_certificate_authority()
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_LAMBDA_FUNCTION_NAME": "packaging-check",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **names,
        "IPOC_ADMIN_PRINCIPALS": principal_arn("operator"),
        "IPOC_VAAS_BACKEND": "kubernetes",
        "IPOC_K8S_HOST": "https://eks.invalid",
        "IPOC_EKS_CLUSTER": "ipoc",
        "IPOC_PROXY_CERT": ca.certificate,
        "IPOC_PROGRAM_LOAD_SECRET_ARN": arns["program-load"],
        "_SECRETS": json.dumps(arns),
    }


def event_for(handler: str, env: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """One real event per handler and a check of its answer."""
    arns = json.loads(env["_SECRETS"])
    json_headers = {"Content-Type": "application/json"}
    return {
        "lambdas.ccfaas.handler.lambda_handler": (
            build_event("GET", "/instance", user="alice"),
            lambda r: r["statusCode"] == 200 and json.loads(r["body"])["instances"] == [],
        ),
        "lambdas.vaas.handler.lambda_handler": (
            build_event("GET", "/veracruz", user="operator"),
            lambda r: r["statusCode"] == 200 and json.loads(r["body"]) == {"veracruz": []},
        ),
        "lambdas.s3stream.handler.lambda_handler": (
            build_event("POST", "/s3_stream_veracruz", headers=json_headers, body=b"{}", user="alice"),
            lambda r: r["statusCode"] == 400 and json.loads(r["body"])["error"],
        ),
        "lambdas.ccfaas.tasks.lambda_handler": (
            {"action": "expire", "state": {"instance_id": "absent", "ttl_seconds": 60}},
            lambda r: r == {},
        ),
        "lambdas.ccfaas.reaper.lambda_handler": ({}, lambda r: r == {"reaped": []}),
        "lambdas.ccfaas.setup.lambda_handler": (
            {
                "RequestType": "Create",
                "ResourceProperties": {
                    "ProgramLoadSecretArn": arns["program-load"],
                    "ProxyCaCertificateSecretArn": arns["ca-cert"],
                    "ProxyCaKeySecretArn": arns["ca-key"],
                },
            },
            lambda r: r["Data"] == {"ProgramLoadWritten": "True", "ProxyCaWritten": "True"},
        ),
    }[handler]


def run_isolated(code: Path, layer: Path, handler: str, event: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", DRIVER, str(code), str(layer), handler, json.dumps(event)],
        env={k: v for k, v in env.items() if not k.startswith("_")},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{handler} failed in an isolated interpreter:\n{done.stderr[-3000:]}"
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARK))
    return json.loads(line[len(MARK) :])


def test_every_lambda_imports_and_answers_from_its_asset_and_layer_alone(deployed, aws_env, capsys):
    report = []
    for logical_id, function in sorted(deployed["functions"].items(), key=lambda item: item[1]["handler"]):
        code = deployed["directory"] / f"asset.{function['asset']}"
        event, answered = event_for(function["handler"], aws_env)
        outcome = run_isolated(code, deployed["layer"], function["handler"], event, aws_env)
        # Nothing but the standard library, the code asset and the layer was importable...
        assert not [p for p in outcome["isolated_path"] if "site-packages" in p or str(ROOT) in p], outcome[
            "isolated_path"
        ]
        allowed = (str(code), str(deployed["layer"]), sys.base_prefix)
        assert [f for f in outcome["files"] if not f.startswith(allowed)] == []
        # ...and the handler answered its event
        assert answered(outcome["result"]), (function["handler"], outcome["result"])
        module = function["handler"].rpartition(".")[0]
        assert outcome["kubernetes"] == (module in KUBERNETES_USERS), (
            f"{module} loads the kubernetes client: {outcome['kubernetes']}"
        )
        report.append(
            (logical_id, function["handler"], outcome["import_seconds"], outcome["call_seconds"], outcome["kubernetes"])
        )
    with capsys.disabled():
        print(
            f"\nLambda cold-start imports (isolated python{sys.version_info.major}.{sys.version_info.minor} -I -S, "
            f"code asset + the layer's {len(deployed['pins'])} distributions):"
        )
        for _logical_id, handler, imported, called, kubernetes in report:
            print(
                f"  {handler:42} import {imported * 1000:6.0f} ms   first event {called * 1000:6.0f} ms"
                f"{'   (loads kubernetes)' if kubernetes else ''}"
            )
