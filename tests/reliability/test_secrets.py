"""A full `make demo` run, then a scan of everything it logged for secrets.

Looked for in the demo's output and every log file in its workspace (the local stack's log, with
the Lambdas' Powertools logs at INFO as deployed): any PEM private key, a slice of each private key
the run created (user, program-load, proxy CA, platform), the AWS secret key the run was given, the
video's AES key and IV (raw, hex, base64), and samples of the plaintext video frames (raw, hex, base64).
Runtime processes' own logs go with their directories at teardown and are not scanned.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from client.camera.video import decrypt
from tests.reliability.tally import TALLY

ROOT = Path(__file__).resolve().parents[2]


def forms(name: str, raw: bytes) -> dict[str, bytes]:
    """The ways bytes can show up in a log: raw, hex (both cases) and base64 at every alignment."""
    found = {f"{name} (raw)": raw, f"{name} (hex)": raw.hex().encode(), f"{name} (HEX)": raw.hex().upper().encode()}
    for shift in range(3):
        piece = raw[shift : shift + (len(raw) - shift) // 3 * 3]
        found[f"{name} (base64+{shift})"] = base64.b64encode(piece)
    return found


def needles(workspace: Path, aws_secret: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {"a PEM private key": b"PRIVATE KEY-----", "the AWS secret key": aws_secret.encode()}
    for key_file in [*workspace.rglob("*.key"), *workspace.rglob("*key.pem")]:
        text = key_file.read_text(errors="replace")
        if "PRIVATE KEY" in text:
            body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
            found[f"private key {key_file.name}"] = body[20:60].encode()
    key, iv = (workspace / "in_enc.y4m.key").read_bytes(), (workspace / "in_enc.y4m.iv").read_bytes()
    found.update(forms("the video key", key))
    found.update(forms("the video IV", iv))
    plaintext = decrypt((workspace / "in_enc.y4m").read_bytes(), key, iv)
    for percent in (10, 30, 50, 70, 90):
        start = len(plaintext) * percent // 100
        window = plaintext[start : start + 33]
        if len(set(window)) >= 8:  # a flat patch of a frame would match anything
            found.update(forms(f"plaintext frame bytes at {percent}%", window))
    return found


def scan(sources: dict[str, bytes], wanted: dict[str, bytes]) -> list[str]:
    return [
        f"{what} in {where}"
        for where, content in sources.items()
        for what, needle in wanted.items()
        if needle in content
    ]


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    wanted = {**forms("k", b"\x01\x02\x03\x04\x05\x06\x07\x08\x09"), "pem": b"PRIVATE KEY-----"}
    planted = b"log line " + base64.b64encode(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a")
    assert scan({"log": planted}, wanted)  # the key sits at offset 1 of a base64 run: one alignment catches it
    assert scan({"log": b"x 010203040506070809 y"}, wanted)
    assert not scan({"log": b"nothing to see"}, wanted)


def test_a_full_demo_run_logs_no_secret() -> None:
    aws_secret = secrets.token_urlsafe(30)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIAIPOCSCANTEST0000",
        "AWS_SECRET_ACCESS_KEY": aws_secret,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=ROOT, env=env, capture_output=True, timeout=600
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    said = re.search(rb"Demo workspace: (\S+)", run.stdout)
    assert said, run.stdout.decode(errors="replace")[-3000:]
    workspace = Path(said.group(1).decode())
    sources = {"the demo's stdout": run.stdout, "the demo's stderr": run.stderr}
    sources.update({str(log.relative_to(workspace)): log.read_bytes() for log in workspace.rglob("*.log")})
    assert "home/local/stack.log" in sources and len(sources["home/local/stack.log"]) > 1000
    wanted = needles(workspace, aws_secret)
    assert len(wanted) > 30
    found = scan(sources, wanted)
    TALLY.add(secrets_found=len(found), refusals_checked=0)
    assert found == []
