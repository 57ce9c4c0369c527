"""The real `npx cdk synth` (the aws-cdk CLI pinned in package-lock.json), as an operator runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_npx_cdk_synth_succeeds_quickly_without_context_warnings(tmp_path: Path) -> None:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "run `make bootstrap` (npm ci) first"
    out = tmp_path / "cdk.out"
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1"}
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "AWS_PROFILE"):
        env.pop(name, None)
    started = time.monotonic()
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--no-notices", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert elapsed < 60, f"cdk synth took {elapsed:.0f} s"
    for warning in ("context", "lookup", "[Warning", "Error"):
        assert warning not in output, output[-2000:]
    templates = sorted(p.name for p in out.glob("*.template.json"))
    assert templates == ["Ipoc.template.json", "IpocNetwork.template.json", "IpocObservability.template.json"]
    shutil.rmtree(out)
