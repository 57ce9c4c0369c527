"""A file that is not what a command expects (a binary file given as a policy or a PEM key) is refused in one
line naming it, not with a decoder's exception ("unexpected UnicodeDecodeError", found by a new-user QA pass).
The commands stop before any network call: no stack or runtime is needed."""

from __future__ import annotations

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
