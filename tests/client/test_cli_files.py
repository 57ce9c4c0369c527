"""A file that is not what a command expects (a binary file given as a policy or a PEM key) is refused in one
line naming it, not with a decoder's exception ("unexpected UnicodeDecodeError", found by a new-user QA pass).
The commands stop before any network call: no stack or runtime is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import policies


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    path = tmp_path / "image.bin"
    path.write_bytes(b"\xff\xd8\xff\xe0 not text")
    return path


@pytest.mark.parametrize("command", [("function", "register"), ("instance", "create")])
def test_a_policy_that_is_not_text_is_named(ipoc_cli, binary: Path, command: tuple[str, ...]):
    result = ipoc_cli(*command, str(binary))
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: {binary} is not UTF-8 text: a policy is a JSON file\n"


@pytest.mark.parametrize("which", ["--identity", "--key"])
def test_a_pem_file_that_is_not_text_is_named(ipoc_cli, binary: Path, tmp_path: Path, ids, which: str):
    files = {"--identity": tmp_path / "user.crt", "--key": tmp_path / "user.key"}
    ids.user.write(files["--identity"], files["--key"])
    files[which] = binary
    (tmp_path / "policy.json").write_text("{}")
    args = ["exec", str(tmp_path / "policy.json"), policies.ECHO]
    result = ipoc_cli(*args, "--identity", str(files["--identity"]), "--key", str(files["--key"]))
    assert result.exit_code == 1, result.output
    expected = "a PEM certificate" if which == "--identity" else "a PEM private key"
    assert result.stderr == f"error: {binary} is not UTF-8 text: it should hold {expected}\n"


@pytest.mark.parametrize("name", ["a/b", "vod y", ""])
def test_a_function_name_the_registry_refuses_is_refused_before_any_route_is_built(ipoc_cli, tmp_path, name):
    """With '/' the name reached another route ("no route POST /function/a/b/versions"); empty, the list route
    (a false "already registered with another policy")."""
    policy = policies.echo_function(name, b"\0asm")
    (tmp_path / "f.json").write_text(json.dumps(policy))
    result = ipoc_cli("function", "register", str(tmp_path / "f.json"), "--program", f"{policies.ECHO}=x")
    assert result.exit_code == 1, result.output
    assert "$.function must be 1-128 characters of letters, digits" in result.stderr
