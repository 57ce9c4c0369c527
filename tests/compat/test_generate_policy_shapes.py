"""Item 1: policies shaped as Veracruz's generate-policy writes them, for the linux and the nitro platforms.

generate-policy writes ``null`` for the runtime hash of each platform it did
not measure and always adds ``runtime_manager_hash_icecap``. Veracruz accepts
such policies; so must ``ipoc policy validate|explain``, our runtime (on the
platform whose hash is set) and our client.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipoc.client import VeracruzClient
from ipoc.errors import PolicyError
from runtime.measurement import measurement
from tests.compat.identities import cert_conf_identity
from tests.compat.shapes import generate_policy, vod_identities
from tests.support import processes
from tests.support.waiting import free_port

PROGRAM, DATA, S3, USER = (cert_conf_identity() for _ in range(4))


def _policy(platform: str, proxy, **kwargs) -> str:
    return generate_policy(
        platform,
        vod_identities(PROGRAM, DATA, S3, USER),
        measurement=measurement(),
        proxy_url=proxy.url,
        proxy_cert=proxy.ca_pem,
        server_url=f"127.0.0.1:{free_port()}",
        file_hashes={"/program/detector.wasm": b"\0asm"},
        **kwargs,
    )


@pytest.mark.parametrize("platform", ["linux", "nitro"])
def test_policy_validate_and_explain_accept_generate_policy_output(platform, proxy, tmp_path: Path):
    text = _policy(platform, proxy)
    document = json.loads(text)
    other = "nitro" if platform == "linux" else "linux"
    assert document[f"runtime_manager_hash_{other}"] is None and document["runtime_manager_hash_icecap"]
    path = tmp_path / f"{platform}.json"
    path.write_text(text)
    validated = processes.run(["policy", "validate", "--kind", "full", str(path)])
    assert validated.returncode == 0, validated.stderr
    assert "valid full policy" in validated.stdout + validated.stderr
    # without --kind, one missing key still makes it a full policy that lacks that key (it was guessed a VaaS
    # policy and refused for every key completion adds: second new-user QA pass)
    del document["veracruz_server_url"]
    (tmp_path / "incomplete.json").write_text(json.dumps(document))
    incomplete = processes.run(["policy", "validate", str(tmp_path / "incomplete.json")])
    assert incomplete.returncode == 1 and "veracruz_server_url" in incomplete.stderr, incomplete.stderr
    assert "VaaS policy" not in incomplete.stderr
    explained = processes.run(["policy", "explain", "--json", str(path)])
    assert explained.returncode == 0, explained.stderr
    rows = json.loads(explained.stdout)
    user_rows = [r for r in rows if r["principal"].startswith("identity 3 (") and "CN=zibblezabble" in r["principal"]]
    assert {(r["path"], r["value"]) for r in user_rows} >= {("/user_input/", "534084"), ("/output/", "24582")}


def test_linux_runtime_serves_a_generate_policy_linux_policy(launcher, proxy):
    runtime = launcher.serve(_policy("linux", proxy))
    with VeracruzClient(runtime.policy, USER.certificate, USER.private_key) as client:
        assert client.verified["runtime_hash"] == measurement()
        client.write_file("/user_input/key", b"k" * 16)
    assert (runtime.scratch / "fs" / "user_input" / "key").read_bytes() == b"k" * 16


def test_linux_runtime_refuses_a_policy_without_its_platforms_hash(launcher, proxy):
    """A nitro policy (linux hash null) cannot be served by a linux runtime: no client could verify it."""
    with pytest.raises(PolicyError, match="no runtime_manager_hash_linux"):
        launcher.serve(_policy("nitro", proxy))


def test_runtime_serve_cli_names_the_missing_hash(proxy, tmp_path: Path):
    path = tmp_path / "nitro.json"
    path.write_text(_policy("nitro", proxy))
    served = processes.run(["runtime", "serve", str(path)], timeout=60)
    assert served.returncode != 0
    assert "no runtime_manager_hash_linux" in served.stderr
    # a policy of another kind is called what it is (serde alone said "missing field `id`")
    user = tmp_path / "user.json"
    user.write_text(json.dumps({"function": "vod", "instanceid": "i", "identities": []}))
    refused = processes.run(["runtime", "serve", str(user)], timeout=60)
    assert refused.returncode == 1
    assert "this is a user policy; `ipoc runtime serve` needs a full policy" in refused.stderr, refused.stderr


def test_policy_validate_refuses_what_veracruz_refuses(proxy, tmp_path: Path):
    document = json.loads(_policy("linux", proxy))
    document["enclave_cert_expiry"]["minute"] = 300  # a u8 in Veracruz's Timepoint
    path = tmp_path / "minute.json"
    path.write_text(json.dumps(document, indent=2))
    validated = processes.run(["policy", "validate", "--kind", "full", str(path)])
    assert validated.returncode == 1
    assert "$.enclave_cert_expiry.minute: invalid value: integer `300`, expected u8" in validated.stderr
