"""`ipoc exec` and `ipoc veracruz` against a real runtime (in-process threads, real TLS on loopback).

The protocol answers an execute only when the program ends, so a terminal gets a
spinner with the elapsed time; a data upload is counted chunk by chunk as the
runtime accepts each.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ipoc.client import DEFAULT_CHUNK, VeracruzClient
from tests.client.conftest import plain
from tests.support import policies

DATA = 2 * DEFAULT_CHUNK + 12345  # three chunks: one write_file, two append_file


@pytest.fixture
def echo_instance(start_runtime, ids, echo_wasm, tmp_path: Path) -> Path:
    """A runtime holding the echo program; the user's PEM files and the policy on disk, as a user has them."""
    vaas = policies.vaas_policy(
        [(ids.user, policies.USER_RIGHTS), (ids.loader, policies.LOADER_RIGHTS)], file_hashes={policies.ECHO: echo_wasm}
    )
    runtime = start_runtime(vaas)
    with VeracruzClient(runtime.policy, ids.loader.certificate, ids.loader.private_key) as loader:
        loader.write_file(policies.ECHO, echo_wasm)
    with VeracruzClient(runtime.policy, ids.user.certificate, ids.user.private_key) as user:
        user.write_file("/input/data.txt", b"hello")
    ids.user.write(tmp_path / "user.crt", tmp_path / "user.key")
    (tmp_path / "policy.json").write_text(runtime.policy)
    return tmp_path


def _as_user(files: Path, *args: str) -> list[str]:
    return [
        *args[:1],
        str(files / "policy.json"),
        *args[1:],
        "--identity",
        str(files / "user.crt"),
        "--key",
        str(files / "user.key"),
    ]


def test_exec_on_a_pipe_prints_the_exit_code_only(ipoc_cli, echo_instance: Path):
    result = ipoc_cli(*_as_user(echo_instance, "exec", policies.ECHO))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{policies.ECHO} exited with code 0\n"
    assert result.stderr == ""


def test_exec_on_a_terminal_spins_with_the_elapsed_time(ipoc_cli, echo_instance: Path):
    result = ipoc_cli(*_as_user(echo_instance, "exec", policies.ECHO), terminal=True)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{policies.ECHO} exited with code 0\n"
    spinner = [line for line in plain(result.stderr).splitlines() if line.strip()]
    assert spinner and all(re.fullmatch(rf". running {policies.ECHO} \d+:\d\d:\d\d", line) for line in spinner), spinner


def test_quiet_exec_on_a_terminal_draws_no_spinner(ipoc_cli, echo_instance: Path):
    result = ipoc_cli("--quiet", *_as_user(echo_instance, "exec", policies.ECHO), terminal=True)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{policies.ECHO} exited with code 0\n" and result.stderr == ""


def test_veracruz_data_bar_counts_each_byte_once(ipoc_cli, echo_instance: Path):
    # GIVEN a file of three chunks WHEN it is streamed
    # THEN the bar ends at exactly its size (2.1 MB), not a sum of running totals
    data = echo_instance / "data.txt"
    data.write_bytes(os.urandom(DATA))
    result = ipoc_cli(*_as_user(echo_instance, "veracruz", "--data", f"/input/data.txt={data}"), terminal=True)
    assert result.exit_code == 0, result.output
    bars = [line for line in plain(result.stderr).splitlines() if line.startswith("data /input/data.txt ")]
    assert bars, result.stderr
    assert re.search(r" 2\.1/2\.1 MB [\d.]+ [kMG]?B/s \d+:\d\d:\d\d$", bars[-1]), bars[-1]
    assert f"({DATA} bytes," in result.stderr


def test_results_of_a_program_that_writes_no_detections_fetch_what_was_asked(ipoc_cli, echo_instance: Path):
    """`ipoc results` (and `ipoc run`'s last step) also look for the VOD detector's detections.json; echo writes
    none, and that used to fail the fetch (FileNotFound) before the --result files were read."""
    assert ipoc_cli(*_as_user(echo_instance, "exec", policies.ECHO)).exit_code == 0
    out = echo_instance / "results"
    result = ipoc_cli(*_as_user(echo_instance, "results", "--out", str(out), "--result", "/output/result.txt"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["result.txt", "stderr.txt", "stdout.txt"]
    assert (out / "result.txt").read_bytes() == b"ECHO 5\nHELLO"
    # a --result path that is not there is still an error, named, once the paths after it are fetched too
    again = echo_instance / "again"
    missing = ipoc_cli(
        *_as_user(echo_instance, "results", "--out", str(again), "--result", "/output/none.txt"),
        "--result",
        "/output/result.txt",
    )
    assert missing.exit_code == 1 and "/output/none.txt" in missing.stderr and "FileNotFound" in missing.stderr
    assert f"(the rest was fetched into {again})" in missing.stderr
    assert (again / "result.txt").read_bytes() == b"ECHO 5\nHELLO"


def test_a_result_asked_for_that_is_empty_is_saved_empty(ipoc_cli, start_runtime, ids, tmp_path: Path):
    """Veracruz answers an empty file with "no result"; a path the user asked for was then skipped without a
    word, as if it had not been asked for. The streams, not asked for, are fetched only where the identity may
    read them (an identity without the right failed the whole fetch)."""
    from ipoc import rights

    user_rights = [{"file_name": "/output/", "rights": int(rights.READ_WRITE)}]
    runtime = start_runtime(policies.vaas_policy([(ids.user, user_rights)]))
    with VeracruzClient(runtime.policy, ids.user.certificate, ids.user.private_key) as user:
        user.write_file("/output/empty.txt", b"")
    ids.user.write(tmp_path / "user.crt", tmp_path / "user.key")
    (tmp_path / "policy.json").write_text(runtime.policy)
    out = tmp_path / "out"
    result = ipoc_cli(*_as_user(tmp_path, "results", "--out", str(out), "--result", "/output/empty.txt"))
    assert result.exit_code == 0, result.output
    assert (out / "empty.txt").read_bytes() == b""  # and stdout, this identity may not read, skipped unasked
    denied = ipoc_cli(*_as_user(tmp_path, "results", "--out", str(out), "--result", "stdout"))
    assert denied.exit_code == 1 and "AccessDenied" in denied.stderr  # asked for, it is an error
