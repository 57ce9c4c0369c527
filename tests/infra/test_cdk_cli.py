"""The real `npx cdk synth` (the aws-cdk CLI pinned in package-lock.json), as an operator runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_npx_cdk_synth_succeeds_without_context_warnings(tmp_path: Path) -> None:
    """Offline, with no context lookups. Its duration is a figure for the README (measured, not asserted:
    a shared CI machine makes any wall-clock bound flaky); the subprocess timeout only guards a hang."""
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "run `make bootstrap` (npm ci) first"
    out = tmp_path / "cdk.out"
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CDK_DISABLE_VERSION_CHECK": "1"}
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "AWS_PROFILE"):
        env.pop(name, None)
    result = subprocess.run(
        [str(cdk), "synth", "--quiet", "--no-notices", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for warning in ("context", "lookup", "[Warning", "Error"):
        assert warning not in output, output[-2000:]
    templates = sorted(p.name for p in out.glob("*.template.json"))
    assert templates == ["Ipoc.template.json", "IpocNetwork.template.json", "IpocObservability.template.json"]
    shutil.rmtree(out)
