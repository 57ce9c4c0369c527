"""Streaming 1 GiB into an instance keeps the client's memory flat (RSS growth < 64 MiB).

The client runs in its own process so that its RSS is measured alone; the
runtime is real and stores the file on disk in its scratch directory.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import policies

GIB = 1 << 30


@pytest.mark.slow
def test_one_gib_stream_keeps_client_rss_growth_under_64_mib(start_runtime, ids, tmp_path):
    runtime = start_runtime(policies.vaas_policy([(ids.streamer, [{"file_name": "/input/", "rights": 534084}])]))
    policy = tmp_path / "policy.json"
    policy.write_text(runtime.policy)
    ids.streamer.write(tmp_path / "s.crt", tmp_path / "s.key")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.stream_client",
            str(policy),
            str(tmp_path / "s.crt"),
            str(tmp_path / "s.key"),
            "/input/big.bin",
            str(GIB),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["sent"] == GIB
    assert (runtime.scratch / "fs" / "input" / "big.bin").stat().st_size == GIB
    assert report["rss_growth_mib"] < 64, report
    print(f"streamed 1 GiB in {report['seconds']:.1f} s, client RSS growth {report['rss_growth_mib']:.1f} MiB")
