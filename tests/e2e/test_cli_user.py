"""The publisher's and user's CLI against the local stack: `ipoc function`, `ipoc run`, `ipoc instance`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from tests.support import processes, vod


@pytest.fixture(scope="module")
def vod_registered(stack):
    build = vod.ensure_built()
    args = [
        "function",
        "register",
        str(build / "function.json"),
        "--program",
        f"/program/detector.wasm={build / 'detector.wasm'}",
        "--data",
        f"/program_data/cascade.bin={build / 'cascade.bin'}",
        "--json",
    ]
    first = processes.run(args, env=stack["env"])
    assert first.returncode == 0, first.stderr
    return build, args, json.loads(first.stdout)


@pytest.fixture(scope="module")
def encrypted_input(stack, tmp_path_factory):
    work = tmp_path_factory.mktemp("camera")
    assert (
        processes.run(
            ["camera", "encrypt", str(vod.carphone()), "--out", str(work / "in.y4m"), "--max-frames", "8"],
            env=stack["env"],
        ).returncode
        == 0
    )
    upload = processes.run(
        ["camera", "upload", str(work / "in.y4m"), "s3://ipoc-local-inputs/users/local-admin/cli/in.y4m", "--local"],
        env=stack["env"],
    )
    assert upload.returncode == 0, upload.stderr
    return work


def ipoc(stack, *args: str):
    return processes.run(list(args), env=stack["env"], timeout=300)


def test_register_is_idempotent(stack, vod_registered):
    build, args, first = vod_registered
    assert [f["result"].split(" (")[0] for f in first["files"]] == ["uploaded", "uploaded"]
    again = ipoc(stack, *args)
    assert again.returncode == 0, again.stderr
    assert "already registered with this policy" in again.stderr
    assert [f["result"] for f in json.loads(again.stdout)["files"]] == ["already loaded", "already loaded"]


def test_function_list_and_show_json(stack, vod_registered):
    listed = json.loads(ipoc(stack, "function", "list", "--json").stdout)
    assert {"function": "vod", "latest": 1, "loaded": True} in listed
    shown = json.loads(ipoc(stack, "function", "show", "vod", "--json").stdout)
    assert shown["loaded"] is True and shown["policy"]["function"] == "vod"
    assert ipoc(stack, "function", "show", "nope").returncode == 1


def test_register_checks_hashes_locally_first(stack, vod_registered, tmp_path):
    build, _, _ = vod_registered
    fake = tmp_path / "detector.wasm"
    fake.write_bytes(b"\0asm tampered")
    result = ipoc(
        stack,
        "function",
        "register",
        str(build / "function.json"),
        "--program",
        f"/program/detector.wasm={fake}",
        "--data",
        f"/program_data/cascade.bin={build / 'cascade.bin'}",
    )
    assert result.returncode == 1 and "hashes to" in result.stderr and "pi_hash" in result.stderr


def test_run_end_to_end(stack, vod_registered, encrypted_input, tmp_path):
    out = tmp_path / "results"
    result = ipoc(
        stack,
        "run",
        "vod",
        "--input",
        "s3://ipoc-local-inputs/users/local-admin/cli/in.y4m",
        "--key",
        str(encrypted_input / "in.y4m.key"),
        "--iv",
        str(encrypted_input / "in.y4m.iv"),
        "--out",
        str(out),
        "--instance-id",
        "cli-run",
    )
    assert result.returncode == 0, result.stderr
    assert "runtime hash" in result.stderr and "policy hash" in result.stderr
    assert "8 frames analysed, objects found in 8" in result.stdout
    frames = json.loads((out / "detections.json").read_text())["frames"]
    assert len(frames) == 8 and all(f["boxes"] for f in frames)
    assert (out / "prediction.0.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "stdout.txt").read_text().startswith("Decrypting video...")
    shown = json.loads(ipoc(stack, "instance", "show", "cli-run", "--json").stdout)
    assert shown["status"] == "DELETED"


def test_run_of_a_function_that_is_not_registered_names_that_step(stack, encrypted_input, tmp_path):
    """New-user QA: the lookup ran inside "Prepare identities", which the error then blamed."""
    args = ["run", "nosuchfn", "--input", "s3://ipoc-local-inputs/users/local-admin/cli/in.y4m"]
    args += ["--key", str(encrypted_input / "in.y4m.key"), "--iv", str(encrypted_input / "in.y4m.iv")]
    result = ipoc(stack, *args, "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: Look up function nosuchfn failed: function 'nosuchfn' is not registered", last


def test_run_with_a_wrong_iv_fails_at_compute_and_leaves_nothing(stack, vod_registered, encrypted_input, tmp_path):
    wrong = tmp_path / "wrong.iv"
    wrong.write_bytes(os.urandom(16))
    result = ipoc(
        stack,
        "run",
        "vod",
        "--input",
        "s3://ipoc-local-inputs/users/local-admin/cli/in.y4m",
        "--key",
        str(encrypted_input / "in.y4m.key"),
        "--iv",
        str(wrong),
        "--out",
        str(tmp_path / "out"),
        "--instance-id",
        "cli-wrong-iv",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "error: Execute /program/detector.wasm failed: the program exited with code 2: detector: the decrypted video"
    )
    assert "(instance cli-wrong-iv deleted)" in last
    assert json.loads(ipoc(stack, "instance", "show", "cli-wrong-iv", "--json").stdout)["status"] == "DELETED"
    # asked for its policy, an instance that has none says so and exits 1 (it used to write nothing, exit 0)
    shown = ipoc(stack, "instance", "show", "cli-wrong-iv", "--policy-out", str(tmp_path / "p.json"))
    assert shown.returncode == 1 and "cli-wrong-iv is DELETED" in shown.stderr, shown.stderr
    assert f"it has no policy; nothing written to {tmp_path / 'p.json'}" in shown.stderr
    assert not (tmp_path / "p.json").exists()
    assert json.loads(ipoc(stack, "local", "status", "--json").stdout)["running_runtimes"] == []


def test_instance_commands_one_by_one(stack, vod_registered, encrypted_input, tmp_path, ids):
    identities = tmp_path / "ids"
    ids.user.write(identities / "user.crt", identities / "user.key")
    ids.streamer.write(identities / "streamer.crt", identities / "streamer.key")
    from client.user import run_user_policy

    policy = run_user_policy(
        "vod",
        "cli-steps",
        ids.user,
        ids.streamer,
        program="/program/detector.wasm",
        input_path="/s3_app_input/in_enc.y4m",
        key_path="/user_input/key",
        iv_path="/user_input/iv",
    )
    (tmp_path / "user.json").write_text(json.dumps(policy))
    created = ipoc(
        stack,
        "instance",
        "create",
        str(tmp_path / "user.json"),
        "--policy-out",
        str(tmp_path / "policy.json"),
        "--json",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "READY"
    user = ["--identity", str(identities / "user.crt"), "--key", str(identities / "user.key")]
    assert (
        ipoc(
            stack,
            "veracruz",
            str(tmp_path / "policy.json"),
            *user,
            "--data",
            f"/user_input/key={encrypted_input / 'in.y4m.key'}",
            "--data",
            f"/user_input/iv={encrypted_input / 'in.y4m.iv'}",
        ).returncode
        == 0
    )
    streamed = ipoc(
        stack,
        "stream",
        str(tmp_path / "policy.json"),
        "--input",
        "s3://ipoc-local-inputs/users/local-admin/cli/in.y4m",
        "--to",
        "/s3_app_input/in_enc.y4m",
        "--identity",
        str(identities / "streamer.crt"),
        "--key",
        str(identities / "streamer.key"),
    )
    assert streamed.returncode == 0, streamed.stderr
    assert ipoc(stack, "exec", str(tmp_path / "policy.json"), "/program/detector.wasm", *user).returncode == 0
    fetched = ipoc(stack, "results", str(tmp_path / "policy.json"), *user, "--out", str(tmp_path / "out"))
    assert fetched.returncode == 0 and (Path(tmp_path / "out") / "detections.json").exists()
    listed = json.loads(ipoc(stack, "instance", "list", "--json").stdout)
    assert "cli-steps" in [d["instance_id"] for d in listed]
    # another user's instance of the same name: the administrator's table tells the two apart by owner
    ccfaas = stack["url"]["ccfaas"]
    carol = {"X-Ipoc-Local-User": "carol"}
    assert requests.post(f"{ccfaas}/instance?wait=0", json=policy, headers=carol, timeout=60).status_code == 202
    table = ipoc(stack, "instance", "list").stdout
    assert "Owner" in table and "user/carol" in table and "user/local-admin" in table, table
    assert requests.delete(f"{ccfaas}/instance/cli-steps", headers=carol, timeout=120).status_code in (200, 202)
    assert json.loads(ipoc(stack, "instance", "delete", "cli-steps", "--json").stdout)["status"] == "DELETED"
    # asked for the policy but not waiting for READY: created, and told where the policy will come from
    policy["instanceid"] = "cli-nowait"
    (tmp_path / "nowait.json").write_text(json.dumps(policy))
    out = tmp_path / "nowait-policy.json"
    nowait = ipoc(stack, "instance", "create", str(tmp_path / "nowait.json"), "--wait", "0", "--policy-out", str(out))
    assert nowait.returncode == 0, nowait.stderr
    assert f"no policy written to {out}: instance cli-nowait is not READY yet" in nowait.stderr
    assert not out.exists()
    assert json.loads(ipoc(stack, "instance", "delete", "cli-nowait", "--json").stdout)["status"] == "DELETED"
