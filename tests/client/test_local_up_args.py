"""`ipoc local up` refuses ports it could never listen on, and a profiles file it could not write into, before it
starts anything (second new-user QA pass: `0-5`, `6210-70000`, 1,091 ports and a range over the services' ports
were accepted; the overlap failed only at the first instance, and a broken config.toml crashed the stack once
started, leaving its state file and a warm runtime behind)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from client.cli import ipoc


@pytest.fixture
def env(tmp_path):
    return {"IPOC_HOME": str(tmp_path / "home"), "IPOC_CONFIG": str(tmp_path / "config.toml")}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("6214-6210", "6214 is above 6210: give the lower port first (6210-6214)"),
        ("0-5", "ports are 1-65535; 0-5 is not within them"),
        ("6210-70000", "ports are 1-65535; 6210-70000 is not within them"),
        ("6210-7300", "6210-7300 is 1091 ports: at most 100 runtime slots"),
        ("abc", "expected MIN-MAX, e.g. 3014-3023, not 'abc'"),
    ],
)
def test_a_runtime_port_range_it_could_not_serve_is_refused(env, value, said):
    result = CliRunner(env=env).invoke(ipoc, ["local", "up", "--detach", "--runtime-ports", value])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--runtime-ports", "6201-6202", "--ccfaas-port", "6201"],
            "--ccfaas-port's port 6201 is within --runtime-ports",
        ),
        (["--ccfaas-port", "6201", "--vaas-port", "6201"], "--ccfaas-port and --vaas-port are both given port 6201"),
    ],
)
def test_ports_that_clash_are_refused_naming_both(env, args, said):
    result = CliRunner(env=env).invoke(ipoc, ["local", "up", "--detach", *args])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())


def test_a_profiles_file_it_cannot_read_stops_it_before_anything_starts(env, tmp_path):
    (tmp_path / "config.toml").write_text("[profiles.local\n")
    result = CliRunner(env=env).invoke(ipoc, ["local", "up", "--detach"])
    assert result.exit_code == 1, result.output
    assert "is not valid TOML" in result.output and "fix or move it, then start again" in result.output
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("stack.json"))
