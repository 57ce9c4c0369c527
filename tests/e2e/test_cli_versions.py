"""Versions and aliases as a publisher and a user use them, with the `ipoc` CLI against `ipoc local up`:
the acceptance of issue 19, on the real VOD detector."""

from __future__ import annotations

import hashlib
import importlib
import json

from click.testing import CliRunner

from client.api import ApiError
from client.cli import ipoc as ipoc_command
from tests.support import policies, processes, vod
from tests.support.local_stack import aws_client
from tests.support.wasm import custom_section

WASM = "/program/detector.wasm"


def ipoc(stack, *args: str):
    return processes.run(list(args), env=stack["env"], timeout=300)


def wasm_hash(policy_text: str) -> str:
    return {h["file_path"]: h["hash"] for h in json.loads(policy_text)["file_hashes"]}[WASM]


def artifacts(stack) -> set[str]:
    s3 = aws_client(stack["url"]["aws"], "s3")
    return {o["Key"] for o in s3.list_objects_v2(Bucket="ipoc-artifacts").get("Contents", [])}


def test_publish_pin_roll_back_and_delete_a_version(stack, tmp_path):
    build = vod.ensure_built()
    v1_wasm = (build / "detector.wasm").read_bytes()
    v1_hash = hashlib.sha256(v1_wasm).hexdigest()
    work = tmp_path / "v2"
    work.mkdir()
    (work / "detector.wasm").write_bytes(v1_wasm + custom_section(b"ipoc-build", b"v2"))
    v2_hash = hashlib.sha256((work / "detector.wasm").read_bytes()).hexdigest()
    policy = json.loads((build / "function.json").read_text())
    policy["programs"][0]["pi_hash"] = v2_hash
    (work / "function.json").write_text(json.dumps(policy))
    camera = tmp_path / "camera"
    assert (
        ipoc(
            stack, "camera", "encrypt", str(vod.carphone()), "--out", str(camera / "in.y4m"), "--max-frames", "2"
        ).returncode
        == 0
    )
    assert (
        ipoc(
            stack,
            "camera",
            "upload",
            str(camera / "in.y4m"),
            "s3://ipoc-local-inputs/users/local-admin/v/in.y4m",
            "--local",
        ).returncode
        == 0
    )

    def run(reference: str, instance_id: str, *extra: str) -> str:
        out = tmp_path / instance_id
        result = ipoc(
            stack,
            "run",
            reference,
            "--input",
            "s3://ipoc-local-inputs/users/local-admin/v/in.y4m",
            "--key",
            str(camera / "in.y4m.key"),
            "--iv",
            str(camera / "in.y4m.iv"),
            "--out",
            str(out),
            "--instance-id",
            instance_id,
            *extra,
        )
        assert result.returncode == 0, result.stderr
        assert "2 frames analysed" in result.stdout
        return (out / "policy.json").read_text()

    # GIVEN vod v1 registered and an instance of it kept running
    registered = ipoc(
        stack,
        "function",
        "register",
        str(build / "function.json"),
        "--program",
        f"{WASM}={build / 'detector.wasm'}",
        "--data",
        f"/program_data/cascade.bin={build / 'cascade.bin'}",
        "--json",
    )
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["version"] == 1
    assert wasm_hash(run("vod", "alice-v1", "--keep")) == v1_hash
    # WHEN the publisher publishes v2 with a changed detector (the cascade is shared: not given again)
    published = ipoc(
        stack,
        "function",
        "publish",
        str(work / "function.json"),
        "--program",
        f"{WASM}={work / 'detector.wasm'}",
        "--json",
    )
    assert published.returncode == 0, published.stderr
    outcome = json.loads(published.stdout)
    assert outcome["version"] == 2 and outcome["created"] is True
    assert {f["path"]: f["result"] for f in outcome["files"]}[
        "/program_data/cascade.bin"
    ] == "shared with an earlier version"
    # THEN the running instance still pins v1's bytes, and a new vod:latest runs v2
    kept = json.loads(ipoc(stack, "instance", "show", "alice-v1", "--json").stdout)
    assert kept["status"] == "READY" and kept["version"] == 1 and wasm_hash(kept["policy"]) == v1_hash
    assert wasm_hash(run("vod:latest", "alice-latest")) == v2_hash
    # WHEN prod points at v1 THEN vod:prod runs v1 (what `show` says too)
    assert ipoc(stack, "function", "alias", "vod", "prod", "1").returncode == 0
    shown = json.loads(ipoc(stack, "function", "show", "vod:prod", "--json").stdout)
    assert (shown["version"], shown["aliases"]) == (1, ["prod"])
    assert wasm_hash(run("vod:prod", "alice-prod")) == v1_hash
    # WHEN v1 is deleted THEN it is refused, naming the instance and the alias
    refused = ipoc(stack, "function", "delete", "vod:1")
    assert refused.returncode == 1 and "alice-v1" in refused.stderr and "prod" in refused.stderr
    # WHEN prod moves to v2 (the one-command rollback/forward), the instance ends, and v1 is deleted
    assert ipoc(stack, "function", "alias", "vod", "prod", "2").returncode == 0
    assert json.loads(ipoc(stack, "instance", "delete", "alice-v1", "--json").stdout)["status"] == "DELETED"
    assert f"functions/vod/{v1_hash}" in artifacts(stack)
    deleted = ipoc(stack, "function", "delete", "vod:1")
    assert deleted.returncode == 0, deleted.stderr
    # THEN v1's unshared bytes are gone from the artifacts bucket; the shared cascade and v2 stay
    cascade = hashlib.sha256((build / "cascade.bin").read_bytes()).hexdigest()
    assert artifacts(stack) == {f"functions/vod/{v2_hash}", f"functions/vod/{cascade}"}
    listing = json.loads(ipoc(stack, "function", "versions", "vod", "--json").stdout)
    assert [v["version"] for v in listing["versions"]] == [2] and listing["aliases"] == {"latest": 2, "prod": 2}
    table = ipoc(stack, "function", "versions", "vod")
    assert table.returncode == 0 and "latest, prod" in table.stdout


def test_a_publish_that_cannot_load_its_files_withdraws_its_version(stack, tmp_path, echo_wasm, monkeypatch):
    """New-user QA: a publish whose program was neither given nor held by an earlier version left that version as
    `latest`, which no instance can start from, until someone deleted it by hand; a failed first registration
    likewise left a function without its program."""
    v1 = policies.echo_function("echo_pub", echo_wasm)
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    (tmp_path / "echo.wasm").write_bytes(echo_wasm)
    program = f"{policies.ECHO}={tmp_path / 'echo.wasm'}"
    assert ipoc(stack, "function", "register", str(tmp_path / "v1.json"), "--program", program).returncode == 0
    v2 = json.loads(json.dumps(v1))
    v2["programs"][0]["pi_hash"] = hashlib.sha256(echo_wasm + custom_section(b"ipoc-build", b"v2")).hexdigest()
    (tmp_path / "v2.json").write_text(json.dumps(v2))

    refused = ipoc(stack, "function", "publish", str(tmp_path / "v2.json"))  # its program not given
    assert refused.returncode == 1
    assert f"needs {policies.ECHO}: no earlier version holds it" in refused.stderr, refused.stderr
    assert "Version 2 of echo_pub withdrawn: `latest` is the version before it again" in refused.stderr
    listing = json.loads(ipoc(stack, "function", "versions", "echo_pub", "--json").stdout)
    assert listing["latest"] == 1 and [v["version"] for v in listing["versions"]] == [1]

    register_module = importlib.import_module("client.cli.function.register")  # not the command of that name
    real_upload = register_module._upload

    # a first registration that fails after the API made it (its upload refused: mocked here, as the stack's
    # limits are too large to reach in a test) goes whole, not left without its program
    def refused_upload(*args, **kwargs):
        raise ApiError(413, "PayloadTooLarge", "the upload was refused")

    monkeypatch.setattr(register_module, "_upload", refused_upload)
    (tmp_path / "never.json").write_text(json.dumps(policies.echo_function("never", echo_wasm)))
    env = {**stack["env"], "COLUMNS": "120"}
    failed = CliRunner(env=env).invoke(
        ipoc_command, ["function", "register", str(tmp_path / "never.json"), "--program", program]
    )
    assert failed.exit_code == 1, failed.output
    assert (
        "the upload was refused" in failed.output
        and "Function never withdrawn: nothing was registered" in failed.output
    )
    gone = ipoc(stack, "function", "show", "never")
    assert gone.returncode == 1 and "not registered" in gone.stderr, gone.stderr
    listed = ipoc(stack, "function", "list", "--json")  # a function left without versions made the list fail
    assert listed.returncode == 0 and "never" not in [f["function"] for f in json.loads(listed.stdout)]

    # a version loaded meanwhile (another publish of the same policy completed it) is kept, not withdrawn
    def upload_then_fail(*args, **kwargs):
        real_upload(*args, **kwargs)
        raise ApiError(0, "UploadFailed", "the connection dropped after the upload")

    monkeypatch.setattr(register_module, "_upload", upload_then_fail)
    (tmp_path / "kept.json").write_text(json.dumps(policies.echo_function("kept_meanwhile", echo_wasm)))
    args = ["function", "register", str(tmp_path / "kept.json"), "--program", program]
    kept = CliRunner(env=env).invoke(ipoc_command, args)
    assert kept.exit_code == 1 and "Version 1 of kept_meanwhile was loaded meanwhile" in kept.output, kept.output
    assert json.loads(ipoc(stack, "function", "versions", "kept_meanwhile", "--json").stdout)["versions"][0]["loaded"]


def test_a_direct_upload_over_the_deployments_limit_goes_through_s3(stack, tmp_path, monkeypatch):
    """The CLI uploads files up to its own 4 MiB in the request body; a deployment may set IPOC_DIRECT_UPLOAD_LIMIT
    lower, and such an upload (413) then goes through a presigned URL. Here the CLI's limit is raised instead,
    over the stack's (4 MiB), which is the same disagreement seen from the other side."""
    register_module = importlib.import_module("client.cli.function.register")  # not the command of that name
    monkeypatch.setattr(register_module, "DIRECT_UPLOAD_LIMIT", 8 << 20)
    program = b"\0asm\x01\0\0\0" + bytes(5 << 20)
    (tmp_path / "big.wasm").write_bytes(program)
    (tmp_path / "big.json").write_text(json.dumps(policies.echo_function("big_direct", program)))
    args = ["function", "register", str(tmp_path / "big.json"), "--program", f"{policies.ECHO}={tmp_path / 'big.wasm'}"]
    result = CliRunner(env={**stack["env"], "COLUMNS": "200"}).invoke(ipoc_command, args)
    assert result.exit_code == 0, result.output
    assert f"uploaded through S3 ({len(program)} bytes)" in result.output
    listing = json.loads(ipoc(stack, "function", "versions", "big_direct", "--json").stdout)
    assert listing["versions"][0]["loaded"]
