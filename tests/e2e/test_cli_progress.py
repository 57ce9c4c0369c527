"""Progress a user sees, as subprocesses of the real CLI against `ipoc local up`.

rich's TTY_COMPATIBLE=1 makes the subprocess's stderr count as a terminal; without
it stderr is a pipe and must carry no bars or spinners.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from ipoc.limits import DIRECT_UPLOAD_LIMIT
from tests.support import policies, processes, vod

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TERMINAL = {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color", "COLUMNS": "160"}


def lines(stderr: str) -> list[str]:
    return [line for line in ANSI.sub("", stderr).replace("\r", "\n").splitlines() if line.strip()]


def ipoc(stack, *args: str, terminal: bool = False):
    env = {**stack["env"], **(TERMINAL if terminal else {"TTY_COMPATIBLE": "0"})}
    return processes.run(list(args), env=env, timeout=300)


@pytest.fixture(scope="module")
def weights(stack, echo_wasm, tmp_path_factory) -> tuple[Path, Path, Path]:
    """A function whose data file is above the direct-upload limit, so it goes through a presigned S3 upload."""
    work = tmp_path_factory.mktemp("weights")
    (work / "echo.wasm").write_bytes(echo_wasm)
    blob = work / "weights.bin"
    blob.write_bytes(os.urandom(DIRECT_UPLOAD_LIMIT + 1_000_000))
    policy = policies.echo_function("weighted", echo_wasm)
    policy["data_files"] = [
        {"data_file": "/program_data/weights.bin", "pi_hash": hashlib.sha256(blob.read_bytes()).hexdigest()}
    ]
    policy["file_rights"] = [
        {"file_name": "/program/", "rights": 534084},
        {"file_name": "/program_data/", "rights": 534084},
    ]
    (work / "function.json").write_text(json.dumps(policy))
    return work / "function.json", work / "echo.wasm", blob


def test_register_on_a_terminal_bars_both_uploads(stack, weights):
    policy, program, blob = weights
    result = ipoc(
        stack,
        "function",
        "register",
        str(policy),
        "--program",
        f"{policies.ECHO}={program}",
        "--data",
        f"/program_data/weights.bin={blob}",
        "--json",
        terminal=True,
    )
    assert result.returncode == 0, result.stderr
    assert [f["result"] for f in json.loads(result.stdout)["files"]] == [
        f"uploaded ({program.stat().st_size} bytes)",
        f"uploaded through S3 ({blob.stat().st_size} bytes)",
    ]
    drawn = lines(result.stderr)
    direct = [line for line in drawn if line.startswith(f"upload {policies.ECHO} ")]
    presigned = [line for line in drawn if line.startswith("upload /program_data/weights.bin ")]
    assert direct and presigned, drawn
    # 5,194,304 B = 5.2 MB, counted as requests sends it, with a rate and a time left
    assert re.search(r" 5\.2/5\.2 MB [\d.]+ [kMG]?B/s \d+:\d\d:\d\d$", presigned[-1]), presigned[-1]
    size = program.stat().st_size / 1000
    assert re.search(rf" {size:.1f}/{size:.1f} kB ", direct[-1]), direct[-1]


@pytest.fixture(scope="module")
def vod_input(stack, tmp_path_factory) -> Path:
    build = vod.ensure_built()
    registered = ipoc(
        stack,
        "function",
        "register",
        str(build / "function.json"),
        "--program",
        f"/program/detector.wasm={build / 'detector.wasm'}",
        "--data",
        f"/program_data/cascade.bin={build / 'cascade.bin'}",
    )
    assert registered.returncode == 0, registered.stderr
    work = tmp_path_factory.mktemp("camera")
    assert (
        ipoc(
            stack, "camera", "encrypt", str(vod.carphone()), "--out", str(work / "in.y4m"), "--max-frames", "2"
        ).returncode
        == 0
    )
    upload = ipoc(
        stack,
        "camera",
        "upload",
        str(work / "in.y4m"),
        "s3://ipoc-local-inputs/users/local-admin/progress/in.y4m",
        "--local",
    )
    assert upload.returncode == 0, upload.stderr
    return work


def _run(stack, work: Path, out: Path, terminal: bool):
    return ipoc(
        stack,
        "run",
        "vod",
        "--input",
        "s3://ipoc-local-inputs/users/local-admin/progress/in.y4m",
        "--key",
        str(work / "in.y4m.key"),
        "--iv",
        str(work / "in.y4m.iv"),
        "--out",
        str(out),
        terminal=terminal,
    )


def test_run_on_a_terminal_spins_while_it_waits_streams_and_executes(stack, vod_input, tmp_path):
    result = _run(stack, vod_input, tmp_path / "out", terminal=True)
    assert result.returncode == 0, result.stderr
    drawn = lines(result.stderr)
    size = (vod_input / "in.y4m").stat().st_size / 1000  # the object's size, from a HEAD on the local S3
    expected = [
        r". waiting for vod-[0-9a-f]{8}",
        rf". streaming s3://ipoc-local-inputs/users/local-admin/progress/in\.y4m \({size:.1f} kB\)",
        r". running /program/detector\.wasm",
    ]
    for pattern in expected:
        assert any(re.fullmatch(rf"{pattern} \d+:\d\d:\d\d", line) for line in drawn), (pattern, drawn)


def test_run_on_a_pipe_has_no_spinner_lines(stack, vod_input, tmp_path):
    result = _run(stack, vod_input, tmp_path / "out", terminal=False)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    steps = [line for line in result.stderr.splitlines() if line.startswith("»")]
    assert [s.split(" ")[1] for s in steps] == [
        "Look",
        "Prepare",
        "Create",
        "Verify",
        "Write",
        "Stream",
        "Execute",
        "Fetch",
        "Delete",
    ]
    assert not any(
        re.search(r"(waiting for|streaming|running) .* \d+:\d\d:\d\d$", line) for line in result.stderr.splitlines()
    )
