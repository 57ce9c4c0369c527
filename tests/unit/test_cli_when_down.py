"""Every command that needs the stack says in one line that it is down and how to start it (exit 1).

The endpoints are free loopback ports nothing listens on: the refusal comes from the
kernel's TCP stack, as it does when the stack is stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from client.api import STACK_DOWN
from client.cli import ipoc
from client.profiles import Profile, save
from tests.support.waiting import free_port

DOWN_LINE = f"error: {STACK_DOWN}\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    program = tmp_path / "detector.wasm"
    program.write_bytes(b"\0asm program")
    policy = json.loads((Path(__file__).parent.parent / "data" / "seed" / "function_vod.json").read_text())
    policy["programs"][0]["pi_hash"] = hashlib.sha256(program.read_bytes()).hexdigest()
    policy["data_files"] = []
    function = tmp_path / "function.json"
    function.write_text(json.dumps(policy))
    key = tmp_path / "key.bin"
    key.write_bytes(b"k" * 16)
    user_policy = tmp_path / "user.json"
    user_policy.write_text(json.dumps({"function": policy["function"], "instanceid": "i1", "identities": []}))
    pem = tmp_path / "id.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return {
        "function": function,
        "program": program,
        "key": key,
        "user_policy": user_policy,
        "pem": pem,
        "out": tmp_path / "out",
    }


def commands(files: dict[str, Path]) -> list[list[str]]:
    f = {k: str(v) for k, v in files.items()}
    return [
        ["function", "list"],
        ["function", "show", "vod"],
        ["function", "delete", "vod"],
        ["function", "register", f["function"], "--program", f"/program/detector.wasm={f['program']}"],
        ["instance", "list"],
        ["instance", "show", "i1"],
        ["instance", "delete", "i1"],
        ["instance", "create", f["user_policy"]],
        ["run", "vod", "--input", "s3://bucket/key", "--key", f["key"], "--iv", f["key"], "--out", f["out"]],
        [
            "stream",
            f["pem"],
            "--input",
            "s3://bucket/key",
            "--to",
            "/input/x",
            "--identity",
            f["pem"],
            "--key",
            f["pem"],
        ],
    ]


def _profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str) -> str:
    config = tmp_path / "config.toml"
    monkeypatch.setenv("IPOC_CONFIG", str(config))
    endpoints = {service: f"http://127.0.0.1:{free_port()}" for service in ("ccfaas", "vaas", "s3stream")}
    name = "local" if kind == "local" else "remote"
    save(Profile(name=name, kind=kind, endpoints=endpoints), config)
    monkeypatch.setenv("IPOC_PROFILE", name)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    return endpoints["ccfaas"]


@pytest.mark.parametrize("index", range(10))
def test_every_command_says_the_local_stack_is_down(monkeypatch, tmp_path, files, index):
    _profile(monkeypatch, tmp_path, "local")
    args = commands(files)[index]
    result = CliRunner().invoke(ipoc, args, catch_exceptions=False)
    assert result.exit_code == 1, (args, result.output)
    assert result.stderr == DOWN_LINE, args
    assert not files["out"].exists()


def test_camera_upload_to_the_local_stack_says_it_is_down(monkeypatch, tmp_path, files):
    monkeypatch.setenv("IPOC_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        ipoc, ["camera", "upload", str(files["key"]), "s3://ipoc-local-inputs/x", "--local"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert result.stderr == DOWN_LINE


def test_camera_upload_to_a_stopped_local_stack_says_it_is_down(monkeypatch, tmp_path, files):
    """The local profile is left behind by a stack that has stopped: its S3 endpoint refuses connections."""
    config = tmp_path / "config.toml"
    monkeypatch.setenv("IPOC_CONFIG", str(config))
    endpoints = {service: f"http://127.0.0.1:{free_port()}" for service in ("ccfaas", "vaas", "s3stream")}
    save(
        Profile(name="local", kind="local", endpoints=endpoints, s3_endpoint=f"http://127.0.0.1:{free_port()}"), config
    )
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(
        ipoc, ["camera", "upload", str(files["key"]), "s3://ipoc-local-inputs/x", "--local"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert result.stderr == DOWN_LINE


@pytest.mark.parametrize("args", [["function", "list"], ["instance", "show", "i1"]])
def test_an_aws_profile_names_the_endpoint_that_did_not_answer(monkeypatch, tmp_path, args):
    ccfaas = _profile(monkeypatch, tmp_path, "aws")
    result = CliRunner().invoke(ipoc, args, catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == f"error: profile 'remote' endpoint {ccfaas} did not answer (connection refused)\n"


def test_status_says_stopped_with_how_to_start(monkeypatch, tmp_path):
    monkeypatch.setenv("IPOC_HOME", str(tmp_path))
    result = CliRunner().invoke(ipoc, ["local", "status"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == "error: local stack stopped: no local stack is running\n"
    as_json = CliRunner().invoke(ipoc, ["local", "status", "--json"], catch_exceptions=False)
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == {
        "status": "stopped",
        "running": False,
        "reason": "no local stack is running",
        "running_runtimes": [],  # a killed stack's runtimes outlive it: listed, as when it runs
    }


def test_status_says_a_killed_stack_is_stopped(monkeypatch, tmp_path):
    """A stack.json left by a stack killed with kill -9 names a process that is gone."""
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "stack.json").write_text(json.dumps({"pid": gone.pid, "endpoints": {}}))
    monkeypatch.setenv("IPOC_HOME", str(tmp_path))
    result = CliRunner().invoke(ipoc, ["local", "status"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: local stack stopped: the stack process {gone.pid} is gone (it crashed or was killed); "
        "`ipoc local up` starts it again\n"
    )


def test_status_says_unhealthy_when_an_endpoint_does_not_answer(monkeypatch, tmp_path):
    """This test process plays the stack; its CCFaaS endpoint is a port nothing listens on."""
    import os

    port = free_port()
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "stack.json").write_text(
        json.dumps({"pid": os.getpid(), "home": str(tmp_path), "endpoints": {"ccfaas": f"http://127.0.0.1:{port}"}})
    )
    monkeypatch.setenv("IPOC_HOME", str(tmp_path))
    result = CliRunner().invoke(ipoc, ["local", "status", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    reported = json.loads(result.stdout)
    assert reported["status"] == "unhealthy"
    assert reported["reason"] == (
        f"ccfaas at http://127.0.0.1:{port} does not accept connections; "
        "`ipoc local down` then `ipoc local up` restarts it"
    )
