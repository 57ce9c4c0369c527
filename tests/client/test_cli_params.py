"""Parameters several commands share are declared once (client/cli/params.py) and behave alike everywhere."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from client.cli import ipoc
from client.cli.params import enclave_file_pair
from tests.support.seed import small_function


def command(*path: str) -> click.Command:
    found: click.Command = ipoc
    for name in path:
        assert isinstance(found, click.Group)
        sub = found.get_command(click.Context(found), name)
        assert sub is not None, name
        found = sub
    return found


def test_platform_dir_is_one_declaration_in_both_servers():
    options = [
        next(p for p in command(*path).params if p.name == "platform_dir")
        for path in (("runtime", "serve"), ("attestation", "serve"))
    ]
    assert options[0].help == options[1].help and options[0].type.__class__ is options[1].type.__class__
    assert "$IPOC_HOME/platform" in options[0].help


@pytest.mark.parametrize("value", ["/program/p.wasm", "=p.wasm", "/program/p.wasm=", ""])
def test_an_incomplete_pair_is_refused_naming_the_option(value):
    with pytest.raises(click.BadParameter, match="expected ENCLAVE_PATH=FILE") as refused:
        enclave_file_pair(value, "--program")
    assert refused.value.param_hint == "--program"


def test_a_pair_splits_at_the_first_equals_sign():
    assert enclave_file_pair("/p=q.wasm=x", "--data") == ("/p", "q.wasm=x")


def test_both_commands_refuse_a_malformed_pair_alike(tmp_path):
    """`ipoc veracruz` and `ipoc function register` give the same usage error (exit 2) for one mistake."""
    policy, cert, key = (tmp_path / n for n in ("policy.json", "cert.pem", "key.pem"))
    policy.write_text(json.dumps(small_function()))
    cert.write_text("not used")
    key.write_text("not used")
    runner = CliRunner()
    for args in (
        ["veracruz", str(policy), "--identity", str(cert), "--key", str(key), "--program", "p.wasm"],
        ["function", "register", str(policy), "--program", "p.wasm"],
    ):
        result = runner.invoke(ipoc, args)
        assert result.exit_code == 2, (args, result.output)
        assert "expected ENCLAVE_PATH=FILE, got 'p.wasm'" in result.output


@pytest.mark.parametrize(("size", "option"), [(17, "--key"), (4_500_000, "--key"), (15, "--iv")])
def test_run_refuses_a_key_or_iv_file_of_another_size_before_any_instance(tmp_path, size, option):
    """`ipoc run` took the first 16 bytes of any longer file (the video passed as --key, say): the mistake showed
    only at Execute, after an instance was made, attested and fed. The camera's files hold exactly 16 bytes."""
    files = {"--key": tmp_path / "in.key", "--iv": tmp_path / "in.iv"}
    for path in files.values():
        path.write_bytes(bytes(16))
    files[option].write_bytes(bytes(size))
    args = ["run", "echo", "--input", "s3://b/users/me/in", "--out", str(tmp_path / "out")]
    args += ["--key", str(files["--key"]), "--iv", str(files["--iv"])]
    result = CliRunner().invoke(ipoc, args)
    assert result.exit_code == 2, result.output
    assert f"{files[option]} holds {size} bytes" in result.output and "exactly 16" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("reference", "hint"),
    [
        ("vod:prod", "aliases are deleted with `ipoc function alias vod prod --delete`"),
        ("vod:latest", "`latest` is not an alias to delete: it always names the newest version"),
        ("vod:", "give a version number after ':', or none to delete every version"),
    ],
)
def test_function_delete_refuses_a_reference_that_is_not_a_version_with_advice_that_works(reference, hint):
    """New-user QA: `vod:latest` was told to delete the alias `latest`, which the API then refused; `vod:` deleted
    the whole function."""
    result = CliRunner().invoke(ipoc, ["function", "delete", reference])
    assert result.exit_code == 2, result.output
    assert hint in " ".join(result.output.split())


def test_veracruz_refuses_shutdown_and_no_shutdown_together(tmp_path):
    """Second new-user QA pass: both were accepted, and the instance was shut down."""
    for name in ("p.json", "c", "k"):
        (tmp_path / name).write_text("{}")
    files = ["--identity", str(tmp_path / "c"), "--key", str(tmp_path / "k")]
    args = ["veracruz", str(tmp_path / "p.json"), *files, "--shutdown", "--no-shutdown"]
    result = CliRunner().invoke(ipoc, args)
    assert result.exit_code == 2, result.output
    assert "--shutdown and --no-shutdown contradict each other" in result.output
