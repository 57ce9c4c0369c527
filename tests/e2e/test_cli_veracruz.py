"""The issue's acceptance walk, as a user types it: proxy, runtime and `ipoc veracruz` as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import policies, processes
from tests.support.waiting import free_port


@pytest.fixture
def files(tmp_path: Path, ids, echo_wasm):
    """Identity PEM files and inputs on disk, as a user would have them."""
    for name in ("user", "loader", "streamer", "outsider"):
        identity = getattr(ids, name)
        identity.write(tmp_path / f"{name}.crt", tmp_path / f"{name}.key")
    (tmp_path / "echo.wasm").write_bytes(echo_wasm)
    (tmp_path / "data.txt").write_text("attested hello")
    return tmp_path


def echo_policy(cli_proxy, ids, echo_wasm, measurement: str | None = None) -> str:
    from runtime.measurement import measurement as real

    vaas = policies.vaas_policy(
        [
            (ids.user, policies.USER_RIGHTS),
            (ids.loader, policies.LOADER_RIGHTS),
            (ids.streamer, [{"file_name": "/input/", "rights": 534084}]),
        ],
        file_hashes={policies.ECHO: echo_wasm},
    )
    return policies.full_policy(
        vaas, proxy_url=cli_proxy.url, proxy_cert=cli_proxy.ca_pem, measurement=measurement or real(), port=free_port()
    )


def veracruz(policy: Path, who: str, files: Path, *args: str):
    return processes.run(
        ["veracruz", str(policy), "--identity", str(files / f"{who}.crt"), "--key", str(files / f"{who}.key"), *args]
    )


def test_acceptance_walk(cli_proxy, serve_runtime, ids, echo_wasm, files, tmp_path):
    policy_text = echo_policy(cli_proxy, ids, echo_wasm)
    server = serve_runtime(policy_text)
    policy = tmp_path / "policy.json"
    policy.write_text(policy_text)

    # A hashed program with other bytes is refused.
    (files / "evil.wasm").write_bytes(echo_wasm + b"\0")
    refused = veracruz(policy, "loader", files, "--program", f"{policies.ECHO}={files / 'evil.wasm'}")
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith("error: write_file /program/echo.wasm refused by the runtime: FileHashMismatch")
    )

    # The loader, who holds the rights, writes the program.
    loaded = veracruz(policy, "loader", files, "--program", f"{policies.ECHO}={files / 'echo.wasm'}")
    assert loaded.returncode == 0, loaded.stderr
    assert "Verified runtime hash" in loaded.stderr and "Verified policy hash" in loaded.stderr

    # The streamer holds no rights on /output: refused, one clear line.
    denied = veracruz(policy, "streamer", files, "--result", "/output/result.txt=-", "--no-shutdown")
    assert denied.returncode == 1
    assert denied.stderr.strip().splitlines()[-1] == (
        "error: read_file /output/result.txt refused by the runtime: AccessDenied: "
        "identity 2 holds no rights on /output/result.txt (cannot read it)"
    )

    # The user writes data, executes, reads stdout and an output file; the runtime then shuts down.
    out = files / "result.txt"
    run = veracruz(
        policy,
        "user",
        files,
        "--data",
        f"/input/data.txt={files / 'data.txt'}",
        "--compute",
        policies.ECHO,
        "--result",
        "stdout=-",
        "--result",
        f"/output/result.txt={out}",
    )
    assert run.returncode == 0, run.stderr
    assert f"Executed {policies.ECHO}: exit code 0" in run.stderr
    assert run.stdout == "echo: read 14 bytes from input/data.txt\n"
    assert out.read_text() == "ECHO 14\nATTESTED HELLO"
    assert "Shutting down enclave" in run.stderr
    assert server.proc.wait(10) == 0, server.output()


def test_tampered_policy_foreign_measurement_and_outsiders_are_refused(
    cli_proxy, serve_runtime, ids, echo_wasm, files, tmp_path
):
    policy_text = echo_policy(cli_proxy, ids, echo_wasm)
    serve_runtime(policy_text)

    # One changed byte in the client's copy: refused before any data, naming the policy hash.
    tampered = tmp_path / "tampered.json"
    tampered.write_text(policy_text.replace('"max_memory_mib": 256', '"max_memory_mib": 257'))
    result = veracruz(tampered, "user", files, "--data", f"/input/data.txt={files / 'data.txt'}")
    assert result.returncode == 1
    assert "policy hash mismatch" in result.stderr.splitlines()[-1]
    assert "Wrote" not in result.stderr

    # A certificate outside the policy cannot connect.
    good = tmp_path / "policy.json"
    good.write_text(policy_text)
    result = veracruz(good, "outsider", files, "--shutdown")
    assert result.returncode == 1
    assert "not one of the policy's identities" in result.stderr

    # A runtime attested with another measurement is refused.
    other = echo_policy(cli_proxy, ids, echo_wasm)
    serve_runtime(other, "--simulate-measurement", "cd" * 32)
    other_file = tmp_path / "other.json"
    other_file.write_text(other)
    result = veracruz(other_file, "user", files, "--shutdown")
    assert result.returncode == 1
    assert "runtime hash mismatch: the attested runtime measures " + "cd" * 32 in result.stderr


def test_nothing_to_do_is_a_usage_error(files, tmp_path, cli_proxy, ids, echo_wasm):
    policy = tmp_path / "policy.json"
    policy.write_text(echo_policy(cli_proxy, ids, echo_wasm))
    result = veracruz(policy, "user", files)
    assert result.returncode == 2
    assert "Nothing to do" in result.stderr


def test_runtime_refuses_to_start_without_its_proxy(tmp_path, ids, echo_wasm, cli_proxy):
    doc = json.loads(echo_policy(cli_proxy, ids, echo_wasm))
    doc["proxy_attestation_server_url"] = f"127.0.0.1:{free_port()}"
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(doc, indent=4))
    result = processes.run(["runtime", "serve", str(policy)], timeout=60)
    assert result.returncode == 1
    assert "cannot reach the proxy attestation service" in result.stderr
